#!/bin/sh
# test-flatpak-manifest.sh — the Flatpak manifest parses (flatpak-builder
# --show-manifest) and keeps its promises: the app id used everywhere, GNOME
# 47, GPU access for Vulkan, files only through portals, every download
# pinned (archives by sha256, git by commit). TAP output.
#   test-flatpak-manifest.sh FLATPAK-BUILDER PYTHON MANIFEST APP-ID
fb="$1"; py="$2"; manifest="$3"; id="$4"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# in $tmp: flatpak-builder leaves its .flatpak-builder state folder in the working directory
if (cd "$tmp" && "$fb" --show-manifest "$manifest") >"$tmp/m.json" 2>"$tmp/err"; then
  ok "flatpak-builder --show-manifest accepts it"
else
  notok "flatpak-builder --show-manifest accepts it"; sed 's/^/# /' "$tmp/err"
fi
"$py" - "$tmp/m.json" "$id" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); app_id = sys.argv[2]
fa = m.get('finish-args', [])
checks = [
    ('the app id is ' + app_id, m.get('id', m.get('app-id')) == app_id),
    ('GNOME 47 runtime and SDK', (m.get('runtime'), m.get('runtime-version'), m.get('sdk'))
     == ('org.gnome.Platform', '47', 'org.gnome.Sdk')),
    ('--device=dri for Vulkan', '--device=dri' in fa),
    ('no home or host filesystem access (portals only)',
     not any(a.startswith('--filesystem=') and a.split('=', 1)[1].split(':')[0] in ('home', 'host', 'host-os', '~')
             for a in fa)),
    ('a Wayland socket and an X11 fallback', '--socket=wayland' in fa and '--socket=fallback-x11' in fa),
    ('the command is dcr-forensics', m.get('command') == 'dcr-forensics'),
]
def sources(mods):
    for mod in mods:
        if isinstance(mod, dict):
            for s in mod.get('sources', []):
                yield mod['name'], s
            yield from sources(mod.get('modules', []))
for name, s in sources(m.get('modules', [])):
    t = s.get('type')
    if t in ('archive', 'file') and 'url' in s:
        checks.append(('%s: %s pinned by sha256' % (name, s['url']), len(s.get('sha256', '')) == 64))
    elif t == 'git' and 'url' in s:
        checks.append(('%s: %s pinned by commit' % (name, s['url']), len(s.get('commit', '')) == 40))
checks.append(('the last module builds the app with meson', m['modules'][-1].get('buildsystem') == 'meson'))
for desc, good in checks:
    print(('ok' if good else 'not ok') + ' ' + desc)
PY
while read -r status rest; do
  case "$status" in
    ok) ok "$rest" ;;
    not) notok "${rest#ok }" ;;
    *) notok "manifest check failed: $status $rest" ;;
  esac
done <"$tmp/checks"

echo "1..$n"
[ $fail -eq 0 ]
