#!/usr/bin/env bash
# Installs the real agent clients the end-to-end tests drive (Claude Code and Codex CLI) into .agents/, from the npm
# registry, at pinned versions. Idempotent: an install with the pinned versions is left alone.
#
# `--bump` (`make bump-agents`): asks npm for the newest releases, writes them as the new pins below, installs them
# and reruns the end-to-end tests against them (docs/agent-clients.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PINNED_CLAUDE_CODE="2.1.337"
PINNED_CODEX="0.171.0"
DIR=".agents"

if [ "${1:-}" = "--bump" ]; then
    newest_claude="$(npm view @anthropic-ai/claude-code version)"
    newest_codex="$(npm view @openai/codex version)"
    sed -i -e "s/^PINNED_CLAUDE_CODE=\".*\"/PINNED_CLAUDE_CODE=\"${newest_claude}\"/" \
        -e "s/^PINNED_CODEX=\".*\"/PINNED_CODEX=\"${newest_codex}\"/" "$0"
    echo "pins: Claude Code ${PINNED_CLAUDE_CODE} -> ${newest_claude}, Codex ${PINNED_CODEX} -> ${newest_codex}"
    CLAUDE_CODE_VERSION="${newest_claude}" CODEX_VERSION="${newest_codex}" bash "$0"
    AGENTS_DIR="${AGENTS_DIR:-$PWD/$DIR}" exec "${PYTHON:-python3}" -m pytest tests/e2e -p no:randomly
fi

CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-$PINNED_CLAUDE_CODE}"
CODEX_VERSION="${CODEX_VERSION:-$PINNED_CODEX}"

if [ -x "$DIR/node_modules/.bin/claude" ] && [ -x "$DIR/node_modules/.bin/codex" ] \
    && grep -q "\"version\": \"${CLAUDE_CODE_VERSION}\"" "$DIR/node_modules/@anthropic-ai/claude-code/package.json" \
    && grep -q "\"version\": \"${CODEX_VERSION}\"" "$DIR/node_modules/@openai/codex/package.json"; then
    echo "agent clients already installed in ${DIR}"
    exit 0
fi
mkdir -p "$DIR"
printf '*\n' > "$DIR/.gitignore"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" "@openai/codex@${CODEX_VERSION}"
"$DIR/node_modules/.bin/claude" --version
"$DIR/node_modules/.bin/codex" --version
