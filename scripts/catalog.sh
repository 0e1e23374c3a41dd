#!/usr/bin/env bash
# The console's gettext catalogs (docs/console.md): extracts the messages of its templates
# and codes into web/locale/console.pot and merges them into each language's .po, where a
# translator fills the new entries in. tests/web/test_catalogs.py fails while one is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=".venv/bin/pybabel"
locale=src/lienwatch/web/locale
"$pybabel" -q extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
    -o "$locale/console.pot" src/lienwatch/web
for lang in en zh_CN; do
    po="$locale/$lang/LC_MESSAGES/console.po"
    if [ -f "$po" ]; then
        "$pybabel" -q update -D console -i "$locale/console.pot" -d "$locale" -l "$lang" \
            --no-fuzzy-matching --ignore-obsolete
    else
        "$pybabel" -q init -D console -i "$locale/console.pot" -d "$locale" -l "$lang"
    fi
done
echo "catalogs: $(grep -c '^msgid ' "$locale/console.pot") messages in $locale/console.pot"
