#!/usr/bin/env bash
# Install a single-node Apache Kafka broker (4.x, KRaft mode) for the change-event tests and
# benchmark: a JRE from Debian (when `java` is missing), Maven from Debian (when `mvn` is
# missing) to copy the broker's jars from Maven Central into a cache outside the repository.
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/kafka-<version>/libs/*.jar
#
# The tests start the broker themselves (tests/support/services.py: `java -cp 'libs/*'
# kafka.Kafka` on a free loopback port). Idempotent: when the jars are there (a stamp file
# names the pom's hash) it only checks. Prints the libs directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

pom=scripts/kafka/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "${pom}")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/kafka-${version}"
libs="${cache}/libs"
stamp="${cache}/.pom.sha256"
want=$(sha256sum "${pom}" | cut -d' ' -f1)

apt_install() {
    local runner=()
    [[ ${EUID} -ne 0 ]] && runner=(sudo --)
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        "${runner[@]}" apt-get update -q
    fi
    "${runner[@]}" apt-get install -y -q --no-install-recommends "$@"
}

command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]] && compgen -G "${libs}/kafka_2.13-*.jar" >/dev/null; then
    echo "install_kafka.sh: Kafka ${version} jars already in the cache"
    echo "${libs}"
    exit 0
fi

command -v mvn >/dev/null 2>&1 || apt_install maven

echo "install_kafka.sh: copying Kafka ${version} and its runtime dependencies with Maven"
rm -rf "${libs}.partial"
mkdir -p "${cache}"
mvn --batch-mode --quiet -f "${pom}" \
    -Dmaven.repo.local="${cache}/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="${libs}.partial"
compgen -G "${libs}.partial/kafka_2.13-*.jar" >/dev/null || {
    echo "install_kafka.sh: Maven finished but no kafka_2.13 jar was copied" >&2
    exit 1
}
rm -rf "${libs}" "${cache}/m2"
mv "${libs}.partial" "${libs}"
echo "${want}" >"${stamp}"
echo "install_kafka.sh: $(ls "${libs}" | wc -l) jars in the cache"
echo "${libs}"
