#!/usr/bin/env bash
# A complete local DIRAC S3 deployment on 127.0.0.1, built step by step with the real commands:
# test CA, embedded S3 server, site bootstrap under runit, FileCatalog and S3Gateway installed with
# dirac-admin-sysadmin-cli, then a user WITHOUT S3 keys uploads through the gateway, replicates to a
# File SE, gets an access URL and downloads it with curl. Everything lives in ./demo; stop it with
# `make demo-stop` (tools/demo-stop.sh). Running it again starts from scratch.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${DEMO_DIR:-$ROOT/demo}
export PATH="${VENV_BIN:-$ROOT/.venv/bin}:$PATH"
VO=demo
LFN=/$VO/user/a/alice/demo/hello.dat

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '    $ %s\n' "$*"; "$@"; }
freeport() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
identity() { python -c 'import sys; from DIRAC.Core.Security.X509Chain import X509Chain
c = X509Chain(); c.loadChainFromFile(sys.argv[1]); print(c.getIdentityDN()["Value"])' "$1"; }

"$ROOT/tools/demo-stop.sh" --quiet "$DEMO"
rm -rf "$DEMO"
mkdir -p "$DEMO/s3root/demo-bucket" "$DEMO/file-se"

step "1. A test CA with a host certificate and two users (for demos and tests only)"
run dirac-make-test-ca "$DEMO/ca" --host localhost --user admin --user alice >/dev/null
CA=$DEMO/ca
ADMIN_DN=$(identity "$CA/users/admin/usercert.pem")
ALICE_DN=$(identity "$CA/users/alice/usercert.pem")
echo "    admin: $ADMIN_DN"
echo "    alice: $ALICE_DN"

step "2. An embedded S3 server (rclone serve s3) on 127.0.0.1 with bucket demo-bucket"
S3_PORT=$(freeport)
S3_KEY=demo-$(python -c 'import secrets; print(secrets.token_hex(4))')
S3_SECRET=$(python -c 'import secrets; print(secrets.token_hex(16))')
rclone serve s3 --config /dev/null --auth-key "$S3_KEY,$S3_SECRET" --addr "127.0.0.1:$S3_PORT" \
  --vfs-cache-mode off --force-path-style "$DEMO/s3root" >"$DEMO/s3server.log" 2>&1 &
echo $! >"$DEMO/s3server.pid"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done
echo "    rclone pid $(cat "$DEMO/s3server.pid") on port $S3_PORT (keys only in the server host's dirac.cfg)"

step "3. Bootstrap a site: configuration server and SystemAdministrator under runit"
PORT_BASE=$(python -c 'import random; print(random.randrange(20000, 40000, 10))')
cat >"$DEMO/site.cfg" <<EOF
LocalInstallation
{
  TargetPath = $DEMO/instance
  Host = localhost
  ListenAddress = 127.0.0.1
  PortBase = $PORT_BASE
  CALocation = $CA/certificates
  CertFile = $CA/hosts/localhost/hostcert.pem
  KeyFile = $CA/hosts/localhost/hostkey.pem
  SiteName = DIRAC.Demo.local
  VirtualOrganization = $VO
  AdminUserName = admin
  AdminUserDN = $ADMIN_DN
  AdminGroupName = dirac_admin
}
Registry
{
  DefaultGroup = demo_user
  Users
  {
    alice
    {
      DN = $ALICE_DN
    }
  }
  Groups
  {
    demo_user
    {
      Users = alice
      Properties = NormalUser
      VO = $VO
    }
  }
}
Resources
{
  StorageElements
  {
    # The central definition has no keys: clients go through the S3 gateway.
    S3-DEMO
    {
      S3
      {
        Protocol = s3
        Host = 127.0.0.1
        Port = $S3_PORT
        SecureConnection = False
        Path = demo-bucket
      }
    }
    FILE-DEMO
    {
      File
      {
        Protocol = file
        Host = localhost
        Path = $DEMO/file-se
      }
    }
  }
  FileCatalogs
  {
    FileCatalog
    {
      Master = True
    }
  }
}
# Only in the server host's own etc/dirac.cfg: the S3 keys the gateway signs with.
LocalConfiguration
{
  Resources
  {
    StorageElements
    {
      S3-DEMO
      {
        S3
        {
          Aws_access_key_id = $S3_KEY
          Aws_secret_access_key = $S3_SECRET
        }
      }
    }
  }
}
EOF
run dirac-setup-site "$DEMO/site.cfg"
export DIRACSYSCONFIG=$DEMO/instance/etc/client.cfg X509_CERT_DIR=$CA/certificates

step "4. Install DataManagement/FileCatalog and DataManagement/S3Gateway with dirac-admin-sysadmin-cli"
run dirac-proxy-init --cert "$CA/users/admin/usercert.pem" --key "$CA/users/admin/userkey.pem" \
  -g dirac_admin --out "$DEMO/admin.proxy"
printf 'install service DataManagement FileCatalog\ninstall service DataManagement S3Gateway\nstatus\n' |
  run dirac-admin-sysadmin-cli -H localhost -p $((PORT_BASE + 1)) --proxy "$DEMO/admin.proxy"

step "5. alice makes a proxy (she has no S3 keys)"
run dirac-proxy-init --cert "$CA/users/alice/usercert.pem" --key "$CA/users/alice/userkey.pem" \
  --out "$DEMO/alice.proxy"
export X509_USER_PROXY=$DEMO/alice.proxy
if grep -q Aws_ "$DIRACSYSCONFIG"; then echo "alice's configuration holds S3 keys" >&2; exit 1; fi

step "6. As alice: upload to the gateway-backed S3 SE, replicate to a File SE, get an access URL"
head -c 3000000 /dev/urandom >"$DEMO/hello.dat"
run dirac-dms-add-file "$LFN" "$DEMO/hello.dat" S3-DEMO
run dirac-dms-replicate-lfn "$LFN" FILE-DEMO
run dirac-dms-lfn-replicas "$LFN"
URL=$(run dirac-dms-lfn-accessURL "$LFN" S3-DEMO | tail -1)
case "$URL" in http*) ;; *) echo "not an HTTP URL: $URL" >&2; exit 1 ;; esac
echo "    ${URL:0:110}..."

step "7. Anyone with the URL can download with plain curl"
run curl -sS --fail -o "$DEMO/downloaded.dat" "$URL"
run cmp "$DEMO/hello.dat" "$DEMO/downloaded.dat"

cat <<EOF

$(printf '\033[1m')Demo done: every step worked.$(printf '\033[0m')
  * S3 server (rclone) pid $(cat "$DEMO/s3server.pid"), port $S3_PORT, bucket demo-bucket
  * site in $DEMO/instance: configuration server :$PORT_BASE, SystemAdministrator :$((PORT_BASE + 1)),
    FileCatalog and S3Gateway installed with dirac-admin-sysadmin-cli, all supervised by runit
  * alice (no S3 keys) uploaded $LFN through the S3 gateway, replicated it to FILE-DEMO
    ($DEMO/file-se$LFN), and curl downloaded the same 3000000 bytes from a presigned URL

Try it yourself:
  export DIRACSYSCONFIG=$DIRACSYSCONFIG X509_CERT_DIR=$X509_CERT_DIR X509_USER_PROXY=$X509_USER_PROXY PATH=$ROOT/.venv/bin:\$PATH
  dirac-dms-lfn-metadata $LFN
  dirac-setup-site --status $DEMO/instance
Stop everything with: make demo-stop
EOF
