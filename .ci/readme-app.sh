#!/usr/bin/env bash
# A new application made of nothing but the README: its dependency block (the ```toml block after
# the "<!-- .ci/readme-app.sh" marker in "Using it") as Cargo.toml, and the Rust block after it as
# src/main.rs, built with `cargo build`. This is what a user pastes on day one, so it must build as
# written. The one change: the README's `tenancy = { path = "../tenancy" }` (a clone next to the
# app) points at this checkout, so CI builds this commit.
#
# Usage: bash .ci/readme-app.sh            (CARGO_TARGET_DIR is shared, so a second run is quick)
#        KEEP_README_APP=1 bash .ci/readme-app.sh   (leaves the app's directory for a look)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
readme="$root/README.md"

die() { printf 'readme-app: %s\n' "$*" >&2; exit 1; }

# The fenced block of language $1 that comes first after the marker line; rustdoc's hidden lines
# ("# code", a lone "#") are part of what rustdoc compiles, so they are unhidden here.
block_after_marker() {
    awk -v lang="$1" '
        /^<!-- \.ci\/readme-app\.sh/ { marked = 1; next }
        marked && !inside && $0 ~ "^```" lang "([, ].*)?$" { inside = 1; next }
        inside && /^```/ { exit }
        inside {
            if (lang == "rust" && $0 == "#") { print ""; next }
            if (lang == "rust" && substr($0, 1, 2) == "# ") { print substr($0, 3); next }
            print
        }
    ' "$readme"
}

deps="$(block_after_marker toml)"
main_rs="$(block_after_marker rust)"
[ -n "$deps" ] || die "no \`\`\`toml block after the '<!-- .ci/readme-app.sh' marker in README.md"
[ -n "$main_rs" ] || die "no \`\`\`rust block after the toml block in README.md"
grep -Eq '^tenancy = \{ *path = "[^"]*"' <<<"$deps" \
    || die "the README's dependency block has no 'tenancy = { path = \"...\" ... }' line to point at this checkout"

app="$(mktemp -d "${TMPDIR:-/tmp}/tenancy-readme-app.XXXXXX")"
if [ -z "${KEEP_README_APP:-}" ]; then
    trap 'rm -rf "$app"' EXIT
else
    echo "readme-app: keeping $app"
fi
mkdir "$app/src"
{
    printf '[package]\nname = "readme-app"\nversion = "0.1.0"\nedition = "2024"\npublish = false\n\n'
    # Its own workspace, whatever directory holds it.
    printf '[workspace]\n\n'
    sed -E "s|^tenancy = \\{ *path = \"[^\"]*\"|tenancy = { path = \"$root\"|" <<<"$deps"
    printf '\n'
} >"$app/Cargo.toml"
printf '%s\n' "$main_rs" >"$app/src/main.rs"
# The versions this checkout is tested with; cargo adds the app itself.
cp "$root/Cargo.lock" "$app/Cargo.lock"

echo "readme-app: building $app (Cargo.toml and src/main.rs from README.md)"
(cd "$app" && cargo build --quiet) || die "the README's dependency block and snippet do not build as a new app (KEEP_README_APP=1 keeps it)"
echo "readme-app: the README's app builds"
