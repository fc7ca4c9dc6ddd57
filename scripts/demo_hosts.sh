#!/usr/bin/env bash
# `make demo-hosts`: the same story as `make demo`, on real hosts. Three hosts with systemd as PID 1 and sshd
# (Debian 12 and two Debian 13, hanode.lab.hosts: systemd-nspawn), a client and two real servers; `ansible-playbook
# -i inventories/hosts site.yml` over SSH with become; ha_info; the unit, its sandbox and the journal; traffic
# through the VIP; the master's power pulled, traffic through the new master; power back on, the agent starts at
# boot and takes its VIP back. The lab stays up; the last lines say how to remove it.
#   scripts/demo_hosts.sh            # HANODE_LAB=<name> to choose the lab's name
# The first run builds the two Debian images (mmdebstrap, a minute or two, cached in .cache/hostlab).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/ansible_env.sh
source scripts/ansible_env.sh
export HANODE_LAB="${HANODE_LAB:-hnhost$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-}"
VIP=198.51.100.100
INV=(-i inventories/hosts)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local host=$1; shift; ip netns exec "$HANODE_LAB-$host" "$@"; }

say "1. Real hosts: Debian 12 and Debian 13 with systemd as PID 1, a client, 2 real servers ($HANODE_LAB)"
hanode lab up --name "$HANODE_LAB" --host-os debian12,debian13,debian13 --clients 1 --real-servers 2 \
  --real-server-gateway 203.0.113.254
lab_dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workdir"])' "/run/hanode-lab/$HANODE_LAB.json")
for h in r1 r2; do
  in_ns "$h" setsid -f .venv/bin/python -m hanode.lab.httpd --name "$h" --port 8080 --ready-file "$lab_dir/$h/httpd.ready" \
    >>"$lab_dir/$h/httpd.log" 2>&1 </dev/null
done
ssh_host() { local host=$1; shift; ssh -F "$lab_dir/ssh_config" "$host" "$@"; }

say "2. The operator's own notify script on the hosts (scripts/hostlab_prepare.yml)"
ansible-playbook "${INV[@]}" scripts/hostlab_prepare.yml | tail -n 5

say "3. ansible-playbook -i inventories/hosts site.yml (preflight, fleet check, wheelhouse per platform, rollout)"
time ansible-playbook "${INV[@]}" site.yml

say "4. ansible ha_nodes -m hanode.fleet.ha_info"
ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible "${INV[@]}" ha_nodes -b -m hanode.fleet.ha_info | python3 scripts/demo_info.py

# The output is read whole before matching: `ip ... | grep -q` under pipefail fails when grep exits first
# and ip dies of SIGPIPE, which made the demo name no master now and then.
master() { local h addrs; for h in n1 n2 n3; do addrs=$(in_ns "$h" ip -o addr show dev eth0 2>/dev/null || true); [[ $addrs == *" $VIP/"* ]] && echo "$h"; done; true; }
traffic() {
  local ok=0 fail=0 seen=()
  for _ in $(seq 10); do
    if body=$(in_ns c1 curl -sS --noproxy '*' -m 2 "http://$VIP/" 2>/dev/null); then ok=$((ok + 1)); seen+=("$body"); else fail=$((fail + 1)); fi
  done
  echo "  10 requests from c1 to $VIP:80: $ok ok, $fail failed; answered by: $(printf '%s\n' "${seen[@]}" | sort | uniq -c | tr '\n' ' ')"
}

old=$(master)
say "5. The agent under systemd on $old: unit, sandbox, journal"
ssh_host "$old" sudo systemctl show hanode -p Type -p WatchdogUSec -p Restart -p UnitFileState -p StatusText
ssh_host "$old" sudo systemd-analyze security hanode --no-pager | tail -n 1
ssh_host "$old" "sudo journalctl -u hanode --no-pager -o cat --grep 'VI_.: .* -> '" | tail -n 3

say "6. Traffic through the VIP (master: $old)"
traffic

say "7. Pull the power of the master ($old): no goodbye advert"
t0=$(date +%s.%N)
hanode lab power "$HANODE_LAB" "$old" off
new=""
for _ in $(seq 400); do new=$(master); [ -n "$new" ] && [ "$new" != "$old" ] && break; sleep 0.05; done
echo "  new master: $new (VIP moved $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s after the power went)"
traffic

say "8. Power $old back on: systemd starts the agent at boot, $old takes its VIP back (priority 150)"
hanode lab power "$HANODE_LAB" "$old" on
for _ in $(seq 600); do [ "$(master)" = "$old" ] && break; sleep 0.1; done
echo "  master: $(master)"
ssh_host "$old" "sudo journalctl -u hanode -b --no-pager -o cat --grep 'VI_1: .* -> '" | tail -n 2
traffic

say "9. The lab stays up. Look around, then remove it:"
echo "  export HANODE_LAB=$HANODE_LAB; source scripts/ansible_env.sh"
echo "  ssh -F $lab_dir/ssh_config n2                  # the hosts (user ansible, sudo)"
echo "  ansible -i inventories/hosts ha_nodes -b -m hanode.fleet.ha_info"
echo "  ansible-playbook -i inventories/hosts site.yml -e ha_node_state=absent   # removes hanode from the hosts"
echo "  hanode lab down $HANODE_LAB"
