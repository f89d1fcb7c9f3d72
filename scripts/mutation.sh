#!/usr/bin/env bash
# Mutation testing (mutmut 3) of one module of the safety core, against the tests that cover it.
#
#   scripts/mutation.sh MODULE [MUTANT-GLOB]
#
# MODULE is one of the names below (or `list`).  By hand only, never in CI: see docs/testing.md.
# Each run works in its own scratch copy, .mutation/MODULE/ (gitignored, outside pytest's testpaths),
# so the worktree is never touched and two modules can be run one after the other without clearing
# anything.  Needs `pip install -e '.[dev,mutation]'`.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

# name | file to mutate | tests that cover it | mutant-name glob (empty: every function of the file)
modules=(
  "retention|bot/domain/retention.py|tests/unit/test_retention.py tests/unit/test_retention_properties.py|"
  "approval-store|bot/state/store.py|tests/unit/test_approvals.py tests/unit/test_store.py|bot.state.store.xǁStoreǁtransition* bot.state.store.xǁStoreǁdue_approvals*"
  "approval-flow|bot/flows/approval_flow.py|tests/e2e/test_e2e_approvals.py|"
  "escaping|bot/slack/blocks/common.py|tests/unit/test_blocks.py tests/unit/test_blocks_common.py|bot.slack.blocks.common.x_escape* bot.slack.blocks.common.x_id_list* bot.slack.blocks.common.x_tags_text* bot.slack.blocks.common.x_state* bot.slack.blocks.common.x_in_account*"
  "approval-blocks|bot/slack/blocks/approvals.py|tests/unit/test_blocks.py|"
  "sweep-report|bot/domain/sweep_report.py|tests/unit/test_sweep_report.py tests/unit/test_sweep_cli.py|"
  "sweep-cli|bot/process/sweep_cli.py|tests/unit/test_sweep_cli.py|"
  "pacer|bot/aws/pacing.py|tests/unit/test_pacing.py|"
)

usage() {
  echo "usage: scripts/mutation.sh MODULE [MUTANT-GLOB]" >&2
  echo "modules:" >&2
  for m in "${modules[@]}"; do IFS='|' read -r name file _ _ <<<"$m"; printf '  %-16s %s\n' "$name" "$file" >&2; done
  exit 2
}

[[ $# -ge 1 ]] || usage
[[ $1 == list ]] && usage
entry=""
for m in "${modules[@]}"; do [[ ${m%%|*} == "$1" ]] && entry=$m; done
[[ -n $entry ]] || { echo "unknown module: $1" >&2; usage; }
IFS='|' read -r name file tests glob <<<"$entry"
[[ $# -ge 2 ]] && glob=$2

python -c "import mutmut" 2>/dev/null || { echo "mutmut is not installed: pip install -e '.[dev,mutation]'" >&2; exit 2; }

work="$root/.mutation/$name"
rm -rf "$work"
mkdir -p "$work"
# What the tests import: the three packages, the test tree, the benchmarks' fake EC2, the docs some tests read.
cp -r bot handlers scheduler tests benchmarks docs README.md config.toml "$work/"
rm -rf "$work/benchmarks/.c7n-venv"
find "$work" -name __pycache__ -prune -exec rm -rf {} +

# pyproject.toml as it is, plus the mutmut section for this module.
{
  sed '/^\[tool\.mutmut\]/,$d' pyproject.toml
  echo
  echo "[tool.mutmut]"
  echo 'source_paths = ["bot", "handlers", "scheduler"]'
  echo "only_mutate = [\"$file\"]"
  echo 'also_copy = ["benchmarks", "docs", "README.md", "config.toml"]'
  printf 'pytest_add_cli_args_test_selection = [%s]\n' "$(printf '"%s", ' $tests | sed 's/, $//')"
  echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore", "--hypothesis-profile=mutation"]'
} >"$work/pyproject.toml"

cd "$work"
started=$(date +%s)
# shellcheck disable=SC2086  # the glob list is word-split on purpose
python -m mutmut run --max-children 2 $glob || true
elapsed=$(( $(date +%s) - started ))
python -m mutmut results --all true >results.txt 2>&1 || python -m mutmut results >results.txt 2>&1 || true

# One line a status, then the score: killed (and timed-out) over every mutant that ran.
python - "$name" "$file" "$elapsed" <<'PY'
import re, sys
from collections import Counter
name, file, elapsed = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = Counter()
survivors = []
for line in open("results.txt"):
    m = re.match(r"\s*(\S+): (.+)$", line)
    if m:
        counts[m.group(2).strip()] += 1
        if m.group(2).strip() == "survived":
            survivors.append(m.group(1))
killed = counts["killed"] + counts["timeout"]
total = sum(counts.values()) - counts["skipped"] - counts["not checked"]
score = f"{100 * killed / total:.1f}%" if total else "n/a"
print(f"\n{name} ({file}): {killed}/{total} killed = {score} in {elapsed // 60}m{elapsed % 60:02d}s; {dict(counts)}")
for s in survivors:
    print("  survived:", s)
print(f"\nshow one: cd .mutation/{name} && python -m mutmut show MUTANT")
PY
