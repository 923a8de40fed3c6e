#!/bin/sh
# config_docs.sh - the documented configuration keys are the real ones:
# every key `luapoold --help` lists (the table in src/daemon/config_keys.c)
# is in docs/OPERATIONS.md's key table and in conf/luapoold.conf, nothing
# documented in either is missing from --help, and the defaults they give
# are the ones --help prints.
#   tests/daemon/config_docs.sh BUILD_DIR/luapoold
set -u
luapoold=${1:-build/luapoold}
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "config-docs: FAILED: $*"; failed=1; }

# "  --queue-depth N  (default: 1024)" -> "queue_depth 1024"
"$luapoold" --help >"$tmp/help" || { echo "config-docs: FAILED: $luapoold --help"; exit 1; }
sed -n 's/^  --\([a-z0-9-]*\) [A-Z]*  (default: \(.*\))$/\1 \2/p' "$tmp/help" |
	awk '{ gsub("-", "_", $1); print }' | sort >"$tmp/help.keys"
[ -s "$tmp/help.keys" ] || { echo "config-docs: FAILED: no key in --help"; exit 1; }

# OPERATIONS.md: the table whose header is "| key | default | ...".
awk '/^\| key \| default \|/ { on = 1; next }
     on && !/^\|/ { on = 0 }
     on && /^\| `/ { split($0, c, "|"); k = c[2]; d = c[3];
                     gsub(/[ `]/, "", k); gsub(/^ +| +$/, "", d); gsub(/`/, "", d);
                     print k, d }' docs/OPERATIONS.md | sort >"$tmp/ops.keys"
# conf/luapoold.conf: "key = value" or "# key = example" (unset keys).
sed -n 's/^\(#[[:space:]]*\)\{0,1\}\([a-z][a-z0-9_]*\)[[:space:]]*=[[:space:]]*\(.*\)$/\1|\2 \3/p' \
	conf/luapoold.conf | sort -t'|' -k2 >"$tmp/conf.lines"
sed 's/^[^|]*|//' "$tmp/conf.lines" | sort >"$tmp/conf.keys"

for doc in ops conf; do
	name=$([ $doc = ops ] && echo docs/OPERATIONS.md || echo conf/luapoold.conf)
	cut -d' ' -f1 "$tmp/help.keys" >"$tmp/a"
	cut -d' ' -f1 "$tmp/$doc.keys" | sort -u >"$tmp/b"
	missing=$(comm -23 "$tmp/a" "$tmp/b" | tr '\n' ' ')
	extra=$(comm -13 "$tmp/a" "$tmp/b" | tr '\n' ' ')
	[ -z "$missing" ] || fail "in --help but not in $name: $missing"
	[ -z "$extra" ] || fail "in $name but not in --help: $extra"
done

# Defaults: OPERATIONS.md names each one; the file sets every key that has
# one to it (a key that is unset by default appears commented out).
while read -r key value; do
	ops=$(awk -v k="$key" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$tmp/ops.keys")
	[ -z "$ops" ] || [ "$ops" = "$value" ] ||
		fail "$key: docs/OPERATIONS.md says default $ops, --help $value"
	line=$(grep "|$key " "$tmp/conf.lines" | head -1)
	conf=${line#*|$key }
	case "$line" in
	"#"*) [ "$value" = unset ] || [ "$key" = allow_bytecode ] ||
		fail "$key: commented out in conf/luapoold.conf but its default is $value" ;;
	*) [ "$conf" = "$value" ] || fail "$key: conf/luapoold.conf sets $conf, --help default $value" ;;
	esac
done <"$tmp/help.keys"

[ $failed -eq 0 ] && echo "config-docs: $(wc -l <"$tmp/help.keys") keys: --help, docs/OPERATIONS.md and conf/luapoold.conf agree"
exit $failed
