#!/usr/bin/env bash
# The GitHub Action's `flow` step: check (`flow run --frozen`), run, or diff the recipe.
# Inputs come as environment variables (never spliced into the script). flow writes the
# job summary and the annotations itself; this keeps a copy of the summary for `comment`.
set -uo pipefail

summary="${RUNNER_TEMP:-/tmp}/flowrunner-summary.md"
: > "$summary"
: > "${RUNNER_TEMP:-/tmp}/flowrunner-output.txt"
real_summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
args=()
if [ -n "${INPUT_BUDGET:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  args+=(--max-credits "$INPUT_BUDGET")
fi
if [ -n "${FLOW_REMOTE_CACHE:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  args+=(--remote-cache-mode "${INPUT_REMOTE_CACHE_MODE:-write}")
fi
if [ -n "${INPUT_ARGS:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  read -r -a more <<< "$INPUT_ARGS"   # words, never evaluated
  args+=("${more[@]}")
fi

log="${RUNNER_TEMP:-/tmp}/flowrunner-output.txt"
case "$INPUT_MODE" in
  check) GITHUB_STEP_SUMMARY="$summary" flow run "$INPUT_RECIPE" --frozen "${args[@]}" 2>&1 \
           | tee "$log" ;;
  run)   GITHUB_STEP_SUMMARY="$summary" flow run "$INPUT_RECIPE" "${args[@]}" 2>&1 \
           | tee "$log" ;;
  diff)
    base="${INPUT_BASE:-}"
    if [ -z "$base" ]; then
      if [ -n "${BASE_REF:-}" ]; then base="origin/$BASE_REF"; else base="HEAD~1"; fi
    fi
    flow diff "$INPUT_RECIPE" --base "$base" | tee "$summary" ;;
  *) echo "::error title=flowrunner::mode '$INPUT_MODE': expected check, run or diff"; exit 2 ;;
esac
status=$?

if [ "$status" -ne 0 ] && [ ! -s "$summary" ] && [ -s "$log" ]; then
  # stopped before a run (--frozen found work, an invalid recipe, a budget): say why
  { echo "### ❌ flow $INPUT_MODE \`$INPUT_RECIPE\` (exit $status)"; echo; echo '```'
    tail -n 30 "$log"; echo '```'; } > "$summary"
elif [ "$INPUT_MODE" = "diff" ] && [ -s "$summary" ]; then
  { echo '### flow diff'; echo; echo '```'; cat "$summary"; echo '```'; } > "$summary.md"
  mv "$summary.md" "$summary"
fi
cat "$summary" >> "$real_summary"
gallery="$(python - <<'PY'
import os
import flowrunner
page = flowrunner.load(os.environ["INPUT_RECIPE"]).output_dir / "index.html"
print(page if page.is_file() else "")
PY
)"
{
  echo "ok=$([ "$status" -eq 0 ] && echo true || echo false)"
  echo "gallery=$gallery"
  echo "summary-file=$summary"
} >> "${GITHUB_OUTPUT:-/dev/null}"
exit "$status"
