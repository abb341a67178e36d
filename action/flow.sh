#!/usr/bin/env bash
# The GitHub Action's `flow` step: check (`flow run --frozen`), run, or diff the recipe.
# Inputs come as environment variables (never spliced into the script). flow writes the
# job summary and the annotations itself, into a copy kept for `comment`; a check that
# stops before running (--frozen found work, an invalid recipe) gets a summary saying why.
set -uo pipefail

temp="${RUNNER_TEMP:-/tmp}"
summary="$temp/flowrunner-summary.md"
log="$temp/flowrunner-output.txt"
: > "$summary"
: > "$log"
args=()
if [ -n "${INPUT_BUDGET:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  args+=(--max-credits "$INPUT_BUDGET")
fi
if [ -n "${FLOW_REMOTE_CACHE:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  args+=(--remote-cache-mode "${INPUT_REMOTE_CACHE_MODE:-write}")
fi
if [ -n "${INPUT_ARGS:-}" ] && [ "$INPUT_MODE" != "diff" ]; then
  # split as a shell would split words (quotes kept together), with no expansion at all
  mapfile -t more < <(python -c 'import os, shlex
for word in shlex.split(os.environ["INPUT_ARGS"]):
    print(word.replace("\n", " "))')
  args+=("${more[@]}")
fi

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
    GITHUB_STEP_SUMMARY="$summary" flow diff "$INPUT_RECIPE" --base "$base" 2>&1 \
      | tee "$log" ;;
  *) echo "::error title=flowrunner::mode '$INPUT_MODE': expected check, run or diff"; exit 2 ;;
esac
status=$?

if [ "$status" -ne 0 ] && [ ! -s "$summary" ] && [ -s "$log" ]; then
  { echo "### ❌ flow $INPUT_MODE \`$INPUT_RECIPE\` (exit $status)"; echo; echo '```'
    tail -n 30 "$log"; echo '```'; } > "$summary"
fi
cat "$summary" >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
# the gallery of a run that succeeded here (a shard writes none; diff uploads diff.html)
gallery=""
if [ "$status" -eq 0 ] && [ "$INPUT_MODE" != "diff" ] && [ -f "${GALLERY_PAGE:-}" ] \
   && [[ " ${args[*]} " != *" --shard "* ]]; then
  gallery="$GALLERY_PAGE"
fi
{
  echo "ok=$([ "$status" -eq 0 ] && echo true || echo false)"
  echo "gallery=$gallery"
  echo "summary-file=$summary"
} >> "${GITHUB_OUTPUT:-/dev/null}"
exit "$status"
