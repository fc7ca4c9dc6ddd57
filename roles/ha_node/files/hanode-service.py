# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pid-file service manager for hosts without systemd (the namespace lab): what the role's systemd unit
does (Restart=on-failure, RestartSec=1, reload = SIGHUP), as a small supervisor process.

    hanode-service start  --pidfile P --log L [--socket S] [--timeout 30] -- hanode run --config C
    hanode-service stop   --pidfile P [--timeout 20]
    hanode-service reload --pidfile P
    hanode-service status --pidfile P

`start` detaches the supervisor (double fork, setsid: it keeps the caller's network namespace), which runs
the command and restarts it when it exits with a failure (at most 5 times in 60 s). It returns once the
agent answers on --socket, printing "started" (or "running" when it already was). `stop` sends SIGTERM
(the agent steps down with a priority-0 advert) and waits. Exit status: 0 ok, 1 failure, 3 not running.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import signal
import socket
import sys
import time

RESTART_DELAY_S = 1.0
BURST_LIMIT = 5
BURST_WINDOW_S = 60.0


def read_pid(pidfile):
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().split()[0])
    except (IOError, OSError, ValueError, IndexError):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read().split(b"\0")
    except (IOError, OSError):
        return None
    # A recycled pid belongs to some other program: only our supervisor for this pid file counts.
    if b"supervise" in cmdline and pidfile.encode() in cmdline:
        return pid
    return None


def agent_answers(path):
    if not path:
        return True
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(path)
        sock.sendall(b'{"cmd": "status"}\n')
        data = sock.recv(1 << 20)
        return bool(data) and json.loads(data.split(b"\n")[0]).get("ok") is True
    except (IOError, OSError, ValueError):
        return False
    finally:
        sock.close()


def supervise(args):
    """The detached supervisor: runs the command, restarts it on failure, forwards HUP and TERM."""
    state = {"child": None, "stopping": False}

    def on_term(signum, frame):
        state["stopping"] = True
        if state["child"]:
            try:
                os.kill(state["child"], signal.SIGTERM)
            except OSError:
                pass

    def on_hup(signum, frame):
        if state["child"]:
            try:
                os.kill(state["child"], signal.SIGHUP)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    starts = []
    log = open(args.log, "ab", 0)
    try:
        while not state["stopping"]:
            starts = [t for t in starts if time.time() - t < BURST_WINDOW_S] + [time.time()]
            log.write(("# %s hanode-service: starting %s\n" % (time.strftime("%F %T"), " ".join(args.command))).encode())
            pid = os.fork()
            if pid == 0:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                try:
                    os.execvp(args.command[0], args.command)
                finally:
                    os._exit(127)
            state["child"] = pid
            while True:
                try:
                    status = os.waitpid(pid, 0)[1]
                    break
                except InterruptedError:
                    continue
            state["child"] = None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            log.write(("# %s hanode-service: exited with %d\n" % (time.strftime("%F %T"), code)).encode())
            if state["stopping"] or code == 0:
                break
            if len(starts) >= BURST_LIMIT:
                log.write(b"# hanode-service: too many failures, giving up\n")
                return 1
            time.sleep(RESTART_DELAY_S)
    finally:
        try:
            if read_pid(args.pidfile) == os.getpid() or not os.path.exists("/proc/%d" % os.getpid()):
                os.unlink(args.pidfile)
        except OSError:
            pass
        log.close()
    return 0


def start(args):
    if read_pid(args.pidfile):
        print("running")
        return 0
    for path in (args.pidfile, args.log):
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            with open(args.pidfile, "w") as handle:
                handle.write("%d\n" % os.getpid())
            argv = [sys.executable, os.path.abspath(__file__), "supervise", "--pidfile", args.pidfile, "--log", args.log,
                    "--"] + args.command
            os.execv(sys.executable, argv)
        os._exit(0)
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        pid = read_pid(args.pidfile)
        if pid and agent_answers(args.socket):
            print("started")
            return 0
        if not pid and time.time() > deadline - args.timeout + 2:
            break
        time.sleep(0.1)
    sys.stderr.write("the agent did not come up within %g s; see %s\n" % (args.timeout, args.log))
    return 1


def stop(args):
    pid = read_pid(args.pidfile)
    if not pid:
        print("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + args.timeout
    while time.time() < deadline and os.path.exists("/proc/%d" % pid) and read_pid(args.pidfile) == pid:
        time.sleep(0.05)
    if read_pid(args.pidfile) == pid:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        print("killed")
        return 1
    print("stopped")
    return 0


def reload(args):
    pid = read_pid(args.pidfile)
    if not pid:
        sys.stderr.write("not running\n")
        return 3
    os.kill(pid, signal.SIGHUP)
    print("reloaded")
    return 0


def status(args):
    pid = read_pid(args.pidfile)
    print("running %d" % pid if pid else "not running")
    return 0 if pid else 3


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hanode-service")
    parser.add_argument("action", choices=["start", "stop", "reload", "status", "supervise"])
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--log", default="/dev/null")
    parser.add_argument("--socket")
    parser.add_argument("--timeout", type=float, default=30.0)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.command = command
    args.pidfile = os.path.abspath(args.pidfile)
    if args.action in ("start", "supervise") and not args.command:
        parser.error("%s needs the command to run after --" % args.action)
    return {"start": start, "stop": stop, "reload": reload, "status": status, "supervise": supervise}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
