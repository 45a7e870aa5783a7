#!/bin/sh
# Install Vigil's host agent as a systemd service. Run as root on the host to monitor, from a
# checkout of Vigil or a copy of its agent/ folder:
#
#   VIGIL_AGENT_TOKEN=vgl_... sh agent/install.sh --url https://vigil.example.com
#   sh agent/install.sh --url https://vigil.example.com --token-file ./vigil.token
#
# It copies agent/ to /opt/vigil-agent, writes /etc/vigil-agent/agent.toml (kept if it exists)
# and /etc/vigil-agent/token (readable by root and the agent's user only), creates the system
# user vigil-agent, installs psutil from the distribution if it is missing, and enables and
# starts vigil-agent.service. Run again to upgrade. The places can be changed with
# VIGIL_AGENT_PREFIX, VIGIL_AGENT_CONFIG_DIR, VIGIL_AGENT_STATE_DIR, VIGIL_AGENT_UNIT_DIR and
# VIGIL_AGENT_USER; VIGIL_AGENT_NO_START=1 installs without starting.
set -eu

prefix=${VIGIL_AGENT_PREFIX:-/opt/vigil-agent}
config_dir=${VIGIL_AGENT_CONFIG_DIR:-/etc/vigil-agent}
state_dir=${VIGIL_AGENT_STATE_DIR:-/var/lib/vigil-agent}
unit_dir=${VIGIL_AGENT_UNIT_DIR:-/etc/systemd/system}
user=${VIGIL_AGENT_USER:-vigil-agent}
python=${VIGIL_AGENT_PYTHON:-/usr/bin/python3}
source_dir=$(cd "$(dirname "$0")" && pwd)
url=""
token_file=""
extra=""

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --url) url=${2:?--url needs a value}; shift 2 ;;
        --token-file) token_file=${2:?--token-file needs a value}; shift 2 ;;
        --name) extra="${extra}name = \"${2:?--name needs a value}\"
"; shift 2 ;;
        --insecure) extra="${extra}insecure = true
"; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown option $1 (see --help)" ;;
    esac
done

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "$python is older than Python 3.11"
if ! "$python" -c 'import psutil' 2>/dev/null; then
    command -v apt-get >/dev/null || fail "psutil is missing: install it for $python"
    apt-get install -y python3-psutil
fi

if ! id "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$state_dir" --shell /usr/sbin/nologin "$user"
fi
group=$(id -gn "$user")

install -d -m 0755 "$prefix/agent"
install -m 0644 "$source_dir"/__init__.py "$source_dir"/__main__.py "$source_dir"/host_agent.py \
    "$prefix/agent/"
install -d -m 0750 -g "$group" "$config_dir"
install -d -m 0700 -o "$user" -g "$group" "$state_dir"

umask 077
if [ -n "$token_file" ]; then
    token=$(cat "$token_file")
elif [ -n "${VIGIL_AGENT_TOKEN:-}" ]; then
    token=$VIGIL_AGENT_TOKEN
elif [ ! -s "$config_dir/token" ]; then
    fail "no token: give --token-file or set VIGIL_AGENT_TOKEN"
else
    token=""
fi
if [ -n "$token" ]; then
    printf '%s\n' "$token" > "$config_dir/token.new"
    chgrp "$group" "$config_dir/token.new"
    chmod 0640 "$config_dir/token.new"
    mv "$config_dir/token.new" "$config_dir/token"
fi

if [ ! -e "$config_dir/agent.toml" ]; then
    [ -n "$url" ] || fail "no config yet: give --url"
    cat > "$config_dir/agent.toml" <<TOML
# Vigil host agent (python3 -m agent --help lists every setting).
url = "$url"
token_file = "$config_dir/token"
spool = "$state_dir/spool.jsonl"
interval = 30
$extra
TOML
    chgrp "$group" "$config_dir/agent.toml"
    chmod 0640 "$config_dir/agent.toml"
fi
"$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); from agent.host_agent import parse_args; parse_args(["--config", sys.argv[2]])' \
    "$prefix" "$config_dir/agent.toml" || fail "$config_dir/agent.toml is not usable"

umask 022
sed -e "s|/opt/vigil-agent|$prefix|g" -e "s|/etc/vigil-agent|$config_dir|g" \
    -e "s|^ReadWritePaths=.*|ReadWritePaths=$state_dir|" \
    -e "s|/usr/bin/python3|$python|g" -e "s|^User=.*|User=$user|" -e "s|^Group=.*|Group=$group|" \
    "$source_dir/vigil-agent.service" > "$unit_dir/vigil-agent.service"

if [ "${VIGIL_AGENT_NO_START:-0}" = 1 ] || ! command -v systemctl >/dev/null; then
    echo "installed; start it with: systemctl enable --now vigil-agent"
    exit 0
fi
systemctl daemon-reload
systemctl enable vigil-agent
systemctl restart vigil-agent
echo "vigil-agent is running: journalctl -u vigil-agent -f"
