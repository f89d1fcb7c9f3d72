"""The watches (image, instances, snapshot, volume) polled by hand, AWS played by a Stubber."""
