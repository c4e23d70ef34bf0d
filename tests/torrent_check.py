#!/usr/bin/python3
# torrent_check.py TORRENT SAVE_PATH: loads TORRENT into libtorrent (Debian's python3-libtorrent),
# points it at the files under SAVE_PATH and lets it check them: prints "seeding PROGRESS" and
# exits 0 when every piece verifies, else prints what it saw and exits 1. No peer is contacted:
# DHT, local discovery, UPnP and NAT-PMP are off and it listens on loopback only.
import sys
import time

import libtorrent as lt

torrent, save_path = sys.argv[1], sys.argv[2]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "alert_mask": lt.alert.category_t.error_notification,
})
ti = lt.torrent_info(torrent)
h = ses.add_torrent({"ti": ti, "save_path": save_path})
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    s = h.status()
    if s.errc.value() != 0:
        print("error", s.errc.message())
        sys.exit(1)
    if s.state == lt.torrent_status.seeding and s.progress >= 1.0:
        print("seeding", s.progress, "v2" if ti.info_hashes().has_v2() else "v1")
        sys.exit(0)
    if s.state not in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data,
                       lt.torrent_status.downloading_metadata) and s.progress < 1.0 and \
            s.state == lt.torrent_status.downloading:
        print("downloading", s.progress, "pieces", sum(1 for p in s.pieces if p), "of", len(s.pieces))
        sys.exit(1)
    time.sleep(0.05)
print("timed out", h.status().state, h.status().progress)
sys.exit(1)
