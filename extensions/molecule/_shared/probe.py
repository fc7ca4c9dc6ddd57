"""HTTP probe for the rolling scenario, run in the client's namespace: GET the URL every interval until the
stop file appears; one line per probe: "<unix time> ok <body>" or "<unix time> fail <error>"."""

import os
import sys
import time
import urllib.request


def main(url, log_path, stop_path, interval_s=0.05, timeout_s=3.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with open(log_path, "a", buffering=1) as log:
        while not os.path.exists(stop_path):
            started = time.time()
            try:
                with opener.open(url, timeout=timeout_s) as reply:
                    log.write("%.3f ok %s\n" % (started, reply.read().decode().strip()))
            except Exception as exc:  # every failure counts, whatever it is
                log.write("%.3f fail %s\n" % (started, exc))
            time.sleep(max(0.0, interval_s - (time.time() - started)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
