#!/usr/bin/env bash
# The fleet's certificate authority for the gateway's mtls mode, with openssl.
#
#   scripts/pki.sh DIR init                  the CA (DIR/ca.key, DIR/ca.crt) and an empty revocation list (DIR/crl.pem)
#   scripts/pki.sh DIR server NAME [SAN...]  the gateway's certificate, e.g. server gw DNS:gw.example.com IP:10.0.0.5
#   scripts/pki.sh DIR enroll VEHICLE        a vehicle's key and certificate (CN=VEHICLE, OU=vehicle) in DIR/issued/
#   scripts/pki.sh DIR service ROLE          a cloud service's certificate (CN=dispatcher|console, OU=service)
#   scripts/pki.sh DIR revoke NAME           revoke NAME's certificate and rewrite DIR/crl.pem (the gateway re-reads it)
#   scripts/pki.sh DIR crl                   rewrite DIR/crl.pem; run it before the list expires (every 30 days)
#
# Keys are ECDSA P-256: small enough for a Pi to handshake fast, and accepted everywhere.
# DIR/ca.key is the fleet's root of trust: keep DIR off the gateway and off the trucks.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "pki: $*" >&2; exit 2; }

[ $# -ge 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; } && { usage; exit 0; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
# openssl ca resolves the paths in its config from the working directory: make them absolute.
mkdir -p "$1"
dir=$(cd "$1" && pwd)
action=$2
shift 2
days=${PKI_DAYS:-825}

name_ok() { [[ $1 =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "$2 must be 1-64 characters of A-Z a-z 0-9 _ -, got '$1'"; }
need_ca() { [ -f "$dir/ca.key" ] || die "no CA in $dir: run '$0 $dir init' first"; }

config() {
  cat >"$dir/openssl.cnf" <<EOF
[ ca ]
default_ca = fleet
[ fleet ]
dir = $dir
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.crt
private_key = \$dir/ca.key
default_md = sha256
default_days = $days
default_crl_days = 30
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
organizationalUnitName = optional
[ client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = \${ENV::PKI_SAN}
EOF
}

# issue NAME OU EXTENSION: a key and a certificate signed by the CA, in DIR/issued/.
issue() {
  local name=$1 ou=$2 ext=$3
  mkdir -p "$dir/issued"
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/issued/$name.key")
  openssl req -new -key "$dir/issued/$name.key" -subj "/OU=$ou/CN=$name" -out "$dir/issued/$name.csr"
  PKI_SAN=${PKI_SAN:-DNS:$name} openssl ca -batch -notext -config "$dir/openssl.cnf" -extensions "$ext" \
    -in "$dir/issued/$name.csr" -out "$dir/issued/$name.crt" 2>/dev/null
  rm "$dir/issued/$name.csr"
  echo "$dir/issued/$name.crt $dir/issued/$name.key"
}

gencrl() {
  PKI_SAN=DNS:unused openssl ca -batch -config "$dir/openssl.cnf" -gencrl -out "$dir/crl.pem.tmp" 2>/dev/null
  mv "$dir/crl.pem.tmp" "$dir/crl.pem"
}

case $action in
  init)
    [ ! -f "$dir/ca.key" ] || die "$dir already holds a CA"
    mkdir -p "$dir/newcerts"
    : >"$dir/index.txt"
    echo 1000 >"$dir/serial"
    echo 1000 >"$dir/crlnumber"
    config
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key")
    openssl req -new -x509 -key "$dir/ca.key" -subj "/OU=fleet/CN=${PKI_CA_NAME:-fleet CA}" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
    gencrl
    echo "$dir/ca.crt"
    ;;
  server)
    need_ca
    [ $# -ge 1 ] || die "server needs a NAME"
    name_ok "$1" NAME
    name=$1
    shift
    san="DNS:$name"
    for extra in "$@"; do san="$san,$extra"; done
    PKI_SAN=$san issue "$name" gateway server
    ;;
  enroll)
    need_ca
    [ $# -eq 1 ] || die "enroll needs one VEHICLE"
    name_ok "$1" VEHICLE
    issue "$1" vehicle client
    ;;
  service)
    need_ca
    [ $# -eq 1 ] || die "service needs one ROLE"
    case $1 in dispatcher | console) ;; *) die "ROLE must be dispatcher or console, got '$1'" ;; esac
    issue "$1" service client
    ;;
  revoke)
    need_ca
    [ $# -eq 1 ] || die "revoke needs one NAME"
    name_ok "$1" NAME
    [ -f "$dir/issued/$1.crt" ] || die "no certificate issued to $1 in $dir/issued"
    PKI_SAN=DNS:unused openssl ca -batch -config "$dir/openssl.cnf" -revoke "$dir/issued/$1.crt" 2>/dev/null
    gencrl
    echo "revoked $1; $dir/crl.pem rewritten"
    ;;
  crl)
    need_ca
    gencrl
    echo "$dir/crl.pem"
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
