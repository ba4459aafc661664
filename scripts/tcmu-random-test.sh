#!/bin/sh
# The randomized TCMU ring test at full size: 1,000,000 commands (random READ/WRITE 10/16 of
# 1..128 blocks at random LBAs, INQUIRY/READ CAPACITY/TUR, TMR ABORT TASK entries, ring wraps with
# PAD entries, data-area pressure, out-of-order completion) through the kernel ring simulator and the
# SCSI engine, every read and the final store checked byte for byte against a model.
# `swift test` runs the same test with 20,000 commands; this script sets TCMU_RANDOM_COMMANDS.
# Usage: scripts/tcmu-random-test.sh [COMMANDS] [-c release]   (debug build: 1M in ~46-55 s wall, ~43 s CPU on 2 shared cores)
set -eu
N=${1:-1000000}
CONF=debug
[ "${2:-}" = "-c" ] && CONF=${3:-release}
cd "$(dirname "$0")/.."
TCMU_RANDOM_COMMANDS=$N swift test -c "$CONF" --filter 'TCMUTests.RandomizedRingTests'
