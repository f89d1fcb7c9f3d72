"""The process: the Bolt app with every listener, the runtime (scheduler, pools, shutdown), the sweep and check CLIs."""
