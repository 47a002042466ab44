#!/usr/bin/env bash
# Install S3Proxy (an S3-compatible server backed by a local directory) for the archive tests
# and benchmark: a JRE and Maven from Debian when missing, then the server's jars copied from
# Maven Central into a cache outside the repository:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/s3proxy-<version>/libs/*.jar
#
# The tests start it themselves (tests/support/services.py: `java -cp 'libs/*'
# org.gaul.s3proxy.Main` on a free loopback port). Idempotent: when the jars are there (a
# stamp file names the pom's hash) it only checks. Prints the libs directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

pom=scripts/s3proxy/pom.xml
version=$(sed -n 's:.*<s3proxy.version>\(.*\)</s3proxy.version>.*:\1:p' "${pom}")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/s3proxy-${version}"
libs="${cache}/libs"
stamp="${cache}/.pom.sha256"
want=$(sha256sum "${pom}" | cut -d' ' -f1)

debian_package() {
    local sudo_prefix=()
    [[ ${EUID} -ne 0 ]] && sudo_prefix=(sudo --)
    export DEBIAN_FRONTEND=noninteractive
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]' || "${sudo_prefix[@]}" apt-get update -q
    "${sudo_prefix[@]}" apt-get install -y -q --no-install-recommends "$1"
}

command -v java >/dev/null 2>&1 || debian_package openjdk-17-jre-headless
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]] && compgen -G "${libs}/s3proxy-*.jar" >/dev/null; then
    echo "install_s3proxy.sh: S3Proxy ${version} jars already in the cache"
    echo "${libs}"
    exit 0
fi
command -v mvn >/dev/null 2>&1 || debian_package maven

echo "install_s3proxy.sh: copying S3Proxy ${version} and its runtime dependencies with Maven"
rm -rf "${libs}.partial"
mkdir -p "${cache}"
mvn --batch-mode --quiet -f "${pom}" -Dmaven.repo.local="${cache}/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="${libs}.partial"
if ! compgen -G "${libs}.partial/s3proxy-*.jar" >/dev/null; then
    echo "install_s3proxy.sh: Maven finished but no s3proxy jar was copied" >&2
    exit 1
fi
rm -rf "${libs}" "${cache}/m2"
mv "${libs}.partial" "${libs}"
echo "${want}" >"${stamp}"
echo "install_s3proxy.sh: $(ls "${libs}" | wc -l) jars in the cache"
echo "${libs}"
