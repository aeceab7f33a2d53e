#!/usr/bin/env bash
# Installs the real agent clients the end-to-end tests drive (Claude Code and Codex CLI) into .agents/, from the npm
# registry, at pinned versions. Idempotent: an install with the pinned versions is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.337}"
CODEX_VERSION="${CODEX_VERSION:-0.171.0}"
DIR=".agents"

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
