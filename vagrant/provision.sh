#!/usr/bin/env bash
# halab set-up, idempotent: the Makefile, the Vagrantfile and CI all run this one script.
#   vagrant/provision.sh              install what is missing, start Open vSwitch, build .venv
#   vagrant/provision.sh --start-ovs  only start Open vSwitch if it is not running
# A second run changes nothing and takes about a second.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PACKAGES=(mininet openvswitch-switch keepalived haproxy iperf3 tcpdump iputils-ping ethtool
          iproute2 nftables procps python3-venv tmux postgresql patroni python3-pysyncobj
          rsync lsyncd chromium chromium-driver openssh-client openssh-server sudo)

say() { printf '\033[1mhalab setup:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mhalab setup:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and starts Open vSwitch): run \`sudo make setup\`."
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu machine (apt-get); use the Vagrant VM on other systems (see README)."

install_packages() {
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql ]; then
        # PostgreSQL runs only inside labs, one cluster per database host and run: installing it
        # must not make a system cluster ("main") that starts listening on this machine.
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false   # halab: its labs make their own clusters" \
            > /etc/postgresql-common/createcluster.d/halab.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
        # Labs over several machines need its sshd program (the emulated second machine runs its
        # own); this machine did not listen for ssh before, and halab does not make it start to.
        systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
    fi
}

start_ovs() {
    if ovs-vsctl --timeout=3 show >/dev/null 2>&1; then return; fi
    say "starting Open vSwitch"
    if [ -d /run/systemd/system ]; then
        systemctl start openvswitch-switch
    else
        # No systemd (containers, CI): ovs-ctl starts ovsdb-server and ovs-vswitchd directly.
        # Without the kernel module it prints a warning; halab then uses the userspace datapath.
        /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || true
    fi
    ovs-vsctl --timeout=10 show >/dev/null 2>&1 || die "Open vSwitch did not start; see /var/log/openvswitch/."
}

build_venv() {
    # Mininet is a Debian package for the system Python only: the venv must be built from
    # /usr/bin/python3 and see its site packages.
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import mininet.net' 2>/dev/null; then
        say "creating $VENV"
        # --clear empties it in place: in the Vagrant VM, .venv is a mount point that cannot be removed.
        /usr/bin/python3 -m venv --clear --system-site-packages "$VENV"
    fi
    local stamp="$VENV/.installed-$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        say "installing halab and its Python dependencies into $VENV"
        # --no-compile: Python writes the bytecode of what it imports when it first does (pip compiling
        # every module of every dependency up front took 8 s of a 26 s install).
        "$VENV/bin/pip" install --quiet --no-compile --disable-pip-version-check -e "$REPO[test]"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

install_wrappers() {
    # `sudo halab-vrrp ...` as the README prints it: Debian's sudo keeps secure_path, which
    # lacks .venv/bin. Small wrappers in /usr/local/bin, marked so that only ours are replaced.
    local name target
    for name in halab halab-vrrp halab-heartbeat halab-controller; do
        target="/usr/local/bin/$name"
        if [ -e "$target" ] && ! grep -q "^# halab wrapper" "$target"; then
            say "not replacing $target (not halab's); use $VENV/bin/$name"
            continue
        fi
        printf '#!/bin/sh\n# halab wrapper, written by vagrant/provision.sh: runs %s\nexec %s "$@"\n' \
            "$VENV/bin/$name" "$VENV/bin/$name" > "$target.tmp" && chmod 755 "$target.tmp" && mv "$target.tmp" "$target"
    done
}

if [ "${1:-}" = "--start-ovs" ]; then
    start_ovs
    exit 0
fi
install_packages
start_ovs
build_venv
install_wrappers
say "ready (datapath: $( [ -d /sys/module/openvswitch ] && echo kernel || echo userspace ))"
