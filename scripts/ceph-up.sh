#!/usr/bin/env bash
# Start a throwaway single-node Ceph (mon + 1 memstore OSD + RADOS Gateway) on loopback, no systemd.
# Usage: D=/tmp/sohoa-ceph RGW_PORT=7480 AK=... SK=... bash scripts/ceph-up.sh
# Beast runs with tcp_nodelay=1 (as production gateways should): without it every small-object
# response waits ~40 ms for a delayed ACK (Nagle), which distorts any latency measurement.
# Needs Debian packages radosgw ceph-mon ceph-osd ceph-common (scripts/setup.sh --with-services).
# Prints "endpoint access_key secret_key" on the last line. Stop with scripts/ceph-down.sh (same D).
set -euo pipefail
D=${D:-/tmp/sohoa-ceph}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
OBJECTSTORE=${OBJECTSTORE:-memstore}
AK=${AK:-sohoatestaccess}
SK=${SK:-sohoatestsecret123}

rm -rf "$D"; mkdir -p "$D"/{mon,osd,run,log}
FSID=$(cat /proc/sys/kernel/random/uuid)
export CEPH_CONF=$D/ceph.conf
cat > "$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon initial members = a
mon host = v2:127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/\$cluster.\$name.keyring
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
pid file = $D/run/\$cluster-\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# fast paxos: start-up in ~2 s instead of ~13 s
paxos propose interval = 0.05
paxos min wait = 0.01
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = $OBJECTSTORE
memstore device bytes = 4294967296
osd memory target = 939524096
[mon]
mon data = $D/mon/\$cluster-\$id
keyring = $D/mon/\$cluster-\$id/keyring
[osd]
osd data = $D/osd/\$cluster-\$id
keyring = $D/osd/\$cluster-\$id/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = localhost
CONF

ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$D/ceph.client.admin.keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D/mon.keyring" --import-keyring "$D/ceph.client.admin.keyring" >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
ceph-mon -i a
ceph -s --connect-timeout 30 >/dev/null

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_SECRET=$(ceph-authtool --gen-print-key)
OSD_ID=$(echo "{\"cephx_secret\": \"$OSD_SECRET\"}" | ceph osd new "$OSD_UUID" -i -)
mkdir -p "$D/osd/ceph-$OSD_ID"
ceph-authtool --create-keyring "$D/osd/ceph-$OSD_ID/keyring" --name "osd.$OSD_ID" --add-key "$OSD_SECRET" >/dev/null
ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/osd-mkfs.log" 2>&1
ceph-osd -i "$OSD_ID" --keyring "$D/osd/ceph-$OSD_ID/keyring"
for _ in $(seq 1 60); do
  ceph osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break; sleep 0.5
done
ceph osd stat -f json | grep -q '"num_up_osds":1' || { echo "ceph-up: OSD not up, see $D/log" >&2; exit 1; }

ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$D/ceph.client.rgw.a.keyring"
radosgw -n client.rgw.a
for _ in $(seq 1 120); do
  curl -fs -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 0.25
done
curl -fs -o /dev/null "http://127.0.0.1:$RGW_PORT/" || { echo "ceph-up: radosgw not answering, see $D/log" >&2; exit 1; }
radosgw-admin user create --uid=sohoa --display-name=sohoa --access-key="$AK" --secret-key="$SK" >/dev/null
echo "127.0.0.1:$RGW_PORT $AK $SK"
