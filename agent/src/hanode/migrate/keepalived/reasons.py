"""Reasons that several blocks' tables give for not carrying a keyword (each table names its own otherwise)."""

PROCESS = "keepalived process tuning; hanode has no equivalent setting"
SNMP = "SNMP and DBus are not supported by hanode (use `hanode status --json` or the metrics endpoint)"
FIREWALL = ("hanode's only firewall rules are no_accept's, in an nftables table of its own (inet hanode_noaccept); "
            "keepalived's firewall settings have no meaning here")
TRACK_OTHER = "BFD is not supported by hanode"
NAMESPACE = "run hanode inside the namespace instead (ip netns exec NAME hanode run ...)"
NO_OPTION = "hanode has no such option"
NO_PRIORITY_NOTIFY = "hanode does not notify priority changes"
GNA = "keepalived 2.2.7 has no gna_interval in vrrp_instance (vrrp_gna_interval in global_defs and garp_group are carried)"
