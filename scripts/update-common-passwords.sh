#!/usr/bin/env bash
# Regenerates src/auth/common_passwords.txt (the NIST SP 800-63B blocklist of
# commonly used passwords) from a pinned npm package.
#
# Source: @zxcvbn-ts/language-common@4.1.3 (MIT), file package/src/passwords.json
# (49,233 common passwords, most frequent first). Provenance and license:
# src/auth/common_passwords.LICENSE.md.
#
# Output: one password per line, trimmed, lower-cased, only entries of at least
# 8 characters (the minimum password length is never below 8), deduplicated,
# sorted bytewise (LC_ALL=C).
#
# Needs: bash, npm + node (npm registry access only; nothing else on the
# internet), tar, coreutils. Run from anywhere:
#   scripts/update-common-passwords.sh
set -euo pipefail

PKG_NAME="@zxcvbn-ts/language-common"
PKG_VERSION="4.1.3"
# dist.integrity of the tarball as published on the npm registry
PKG_INTEGRITY="sha512-g2bg4skmlJG9aJqC/nWziZzgYpSe/f3rKeGobrkdFiOrfZVFqqzUgC6BUQWuX54Sua9j0Jxxt+1bf4f/Mal1Kg=="
SRC_PATH="package/src/passwords.json"
MIN_LEN=8

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${repo_root}/src/auth/common_passwords.txt"

for tool in npm node tar sort; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: '$tool' is required" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching ${PKG_NAME}@${PKG_VERSION} from the npm registry" >&2
tarball_name="$(cd "$work" && npm pack --silent --pack-destination "$work" "${PKG_NAME}@${PKG_VERSION}" | tail -n 1)"
tarball="${work}/${tarball_name}"
[[ -f "$tarball" ]] || { echo "error: npm pack produced no tarball (${tarball})" >&2; exit 1; }

# Verify the tarball against the pinned integrity before using it.
actual="$(node -e '
  const fs = require("fs");
  const crypto = require("crypto");
  const h = crypto.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64");
  process.stdout.write("sha512-" + h);
' "$tarball")"
if [[ "$actual" != "$PKG_INTEGRITY" ]]; then
  echo "error: integrity mismatch for ${tarball_name}" >&2
  echo "  expected ${PKG_INTEGRITY}" >&2
  echo "  actual   ${actual}" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work" "$SRC_PATH"

tmp_out="${work}/common_passwords.txt"
node -e '
  const fs = require("fs");
  const list = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const min = Number(process.argv[2]);
  if (!Array.isArray(list)) { console.error("error: expected a JSON array"); process.exit(1); }
  const out = [];
  for (const entry of list) {
    const pw = String(entry).trim().toLowerCase();
    if (/[\r\n]/.test(pw)) continue;
    if ([...pw].length >= min) out.push(pw);
  }
  console.error("source entries: " + list.length + ", kept (length >= " + min + "): " + out.length);
  process.stdout.write(out.join("\n") + "\n");
' "${work}/${SRC_PATH}" "$MIN_LEN" | LC_ALL=C sort -u > "$tmp_out"

mv "$tmp_out" "$out"
echo "wrote $(wc -l < "$out") passwords to ${out#"${repo_root}/"}" >&2
