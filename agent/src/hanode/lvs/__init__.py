"""Load balancing: keepalived's virtual_server half programmed into IPVS or nftables.

How the checker uses it (everything below is the public API):

    from hanode.lvs.backend import open_backend, BackendError
    from hanode.lvs.desired import desired_state, RsHealth, QuorumState
    from hanode.lvs.reconciler import Reconciler

    backend = await open_backend(lvs_config)            # auto: IPVS when the kernel has it, else nftables
    reconciler = Reconciler(backend, state_path="/run/hanode/lvs-owned.json")
    state, quorum = desired_state(lvs_config, health, previous=quorum)   # health[(vs.name, rs_name)] = RsHealth
    result = await reconciler.reconcile(state)            # on every health change and on reload
    result = await reconciler.reconcile(state, refresh=True)   # every lvs_config.reconcile_interval_ms
    reconciler.diff()                                     # status: what is left to do, [] when in sync
    await reconciler.cleanup(keep=lvs_config.keep_on_stop)    # on stop
    await backend.close()

Modules: model (config dataclasses), kernel (kernel-shaped state), desired, plan, validate (pure);
caps (the host's file-based IPVS probe: run on the host by the agent, check-config and the role, its answer
passed to the pure config checks as hanode.config.host.HostCaps); backend, reconciler, ipvs, nft (adapters).
"""
