"""scripts/soak: a cluster's life compressed onto one machine (SPEC §7 "Lifetime", docs/soak.md).

cluster  -- the inventory on 127.0.1.x, one directory root per host, the servers each host runs
hostctl  -- what a host's `systemctl`/`update-ca-certificates` does, for the rollout's run commands
probe    -- the separate process that handshakes with every endpoint every second
calendar -- the simulated weeks: the weekly job, growth, pruning, the root's rotation
report   -- report.json and the timeline picture
"""
