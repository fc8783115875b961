#!/usr/bin/env bash
# Fetches an Apache Kafka broker (KRaft) and its dependencies from Maven Central into
# .cache/kafka/libs, so tests can run a real broker with the machine's Java: no Docker,
# no download site beyond the Maven registry. The tests start and stop the broker
# themselves (test/support/kafka-broker.ts).
set -euo pipefail
cd "$(dirname "$0")/../.."

KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
# The log4j that Kafka 4.1.2 itself depends on.
LOG4J_VERSION=2.25.3
LIBS=.cache/kafka/libs

fetch() {
  if compgen -G "$LIBS/*.jar" >/dev/null; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: needs Maven (mvn) and Java 17" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fleet</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>0</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <!-- The broker logs through SLF4J 1.7; without a binding its log is silent. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
POM
  # Into a temp folder first, so an interrupted fetch never looks like a finished one.
  mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs"
  mkdir -p "$(dirname "$LIBS")"
  rm -rf "$LIBS"
  mv "$tmp/libs" "$LIBS"
  echo "kafka.sh: Kafka ${KAFKA_VERSION} in $LIBS ($(ls "$LIBS" | wc -l) jars)"
}

case "${1:-}" in
  fetch) fetch ;;
  *) echo "usage: $0 fetch" >&2; exit 2 ;;
esac
