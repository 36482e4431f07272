#!/bin/sh
# Install every build, run and test dependency of berth with apt-get.
# Idempotent and quick when everything is present: it asks dpkg first and only
# calls apt-get for what is missing.
set -eu

PKGS="
build-essential pkg-config meson ninja-build clang lld llvm libclang-rt-14-dev
clang-format clang-tidy cppcheck
libjansson-dev libyaml-dev libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev sqlite3
libssl-dev libcrypt-dev libarchive-dev zlib1g-dev libzstd-dev libseccomp-dev libcap-dev libcmocka-dev
python3 python3-pytest python3-pytest-xdist python3-docker python3-requests python3-yaml
docker.io docker-compose skopeo runc crun docker-registry apache2-utils
busybox-static containernetworking-plugins iproute2 iptables util-linux procps
hyperfine wrk jq curl ca-certificates tar gzip zstd
python3-cryptography time openssl tini
hyperfine wrk strace jq curl ca-certificates tar gzip zstd
python3-cryptography time openssl
etcd-server etcd-client awscli python3-boto3
haproxy prometheus
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all $(echo $PKGS | wc -w) packages present"
	exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Do not let package scripts start services (dockerd, registry) on install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
