"""HTTP probe for the rolling scenario, run in the client's namespace: GET the URL every interval until the
stop file appears; one line per probe: "<unix time> ok <body> <seconds>" or "<unix time> fail <error>".
A request counts as failed when it errors or takes longer than the timeout (10 s, a patient but ordinary
client: it rides out TCP's SYN retransmits at 1 s and 3 s)."""

import os
import sys
import time
import urllib.request


def main(url, log_path, stop_path, interval_s=0.05, timeout_s=10.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with open(log_path, "a", buffering=1) as log:
        while not os.path.exists(stop_path):
            started = time.time()
            try:
                with opener.open(url, timeout=timeout_s) as reply:
                    body = reply.read().decode().strip()
                log.write("%.3f ok %s %.3f\n" % (started, body, time.time() - started))
            except Exception as exc:  # every failure counts, whatever it is
                log.write("%.3f fail %s\n" % (started, exc))
            time.sleep(max(0.0, interval_s - (time.time() - started)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
