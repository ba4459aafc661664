import Testing
@testable import ISCSIFabric

@Suite struct WriteTransferTests {
    let limits = WriteTransfer.Limits(initialR2T: true, firstBurstLength: 65536, maxBurstLength: 262_144, maxOutstandingR2T: 1)

    @Test func immediateDataThenR2TsOfMaxBurstLength() throws {
        var transfer = WriteTransfer(expectedLength: 600_000, immediateLength: 8192, commandFinal: true, limits: limits)
        #expect(transfer.received == 8192)
        var tag: UInt32 = 0
        let first = transfer.solicit { tag += 1; return tag }
        #expect(first == [.init(targetTransferTag: 1, r2tSN: 0, offset: 8192, length: 262_144, nextOffset: 8192)])
        // MaxOutstandingR2T = 1: nothing more until the burst completes.
        #expect(transfer.solicit { tag += 1; return tag }.isEmpty)
        #expect(try transfer.receiveDataOut(targetTransferTag: 1, offset: 8192, length: 131_072, dataSN: 0, final: false) == 8192)
        #expect(try transfer.receiveDataOut(targetTransferTag: 1, offset: 139_264, length: 131_072, dataSN: 1, final: true) == 139_264)
        let second = transfer.solicit { tag += 1; return tag }
        #expect(second.map(\.offset) == [270_336])
        #expect(second.map(\.length) == [262_144])
        #expect(second.map(\.r2tSN) == [1])
        _ = try transfer.receiveDataOut(targetTransferTag: 2, offset: 270_336, length: 262_144, dataSN: 0, final: true)
        let third = transfer.solicit { tag += 1; return tag }
        #expect(third.map(\.length) == [600_000 - 532_480])
        _ = try transfer.receiveDataOut(targetTransferTag: 3, offset: 532_480, length: 67_520, dataSN: 0, final: true)
        #expect(transfer.isComplete)
        #expect(transfer.r2tCount == 3)
    }

    @Test func unsolicitedBurstUpToFirstBurstLength() throws {
        let limits = WriteTransfer.Limits(initialR2T: false, firstBurstLength: 65536, maxBurstLength: 262_144, maxOutstandingR2T: 4)
        var transfer = WriteTransfer(expectedLength: 131_072, immediateLength: 16384, commandFinal: false, limits: limits)
        #expect(transfer.awaitingUnsolicited)
        // No R2T while the unsolicited sequence is open.
        #expect(transfer.solicit { 7 }.isEmpty)
        _ = try transfer.receiveDataOut(targetTransferTag: 0xFFFF_FFFF, offset: 16384, length: 49152, dataSN: 0, final: true)
        #expect(!transfer.awaitingUnsolicited)
        let r2ts = transfer.solicit { 7 }
        #expect(r2ts.map(\.offset) == [65536])
        #expect(r2ts.map(\.length) == [65536])
    }

    @Test func outOfOrderDataIsRefused() {
        var transfer = WriteTransfer(expectedLength: 8192, immediateLength: 0, commandFinal: true, limits: limits)
        _ = transfer.solicit { 9 }
        #expect(throws: WriteTransfer.DataOutError.outOfOrder) {
            try transfer.receiveDataOut(targetTransferTag: 9, offset: 4096, length: 4096, dataSN: 0, final: true)
        }
        #expect(throws: WriteTransfer.DataOutError.outOfOrder) {
            try transfer.receiveDataOut(targetTransferTag: 9, offset: 0, length: 4096, dataSN: 5, final: false)
        }
        #expect(throws: WriteTransfer.DataOutError.unknownTransferTag) {
            try transfer.receiveDataOut(targetTransferTag: 10, offset: 0, length: 4096, dataSN: 0, final: false)
        }
        #expect(throws: WriteTransfer.DataOutError.outOfOrder) {
            try transfer.receiveDataOut(targetTransferTag: 9, offset: 0, length: 16384, dataSN: 0, final: true)
        }
    }

    @Test func unsolicitedDataWhenInitialR2TIsRequiredIsRefused() {
        var transfer = WriteTransfer(expectedLength: 8192, immediateLength: 0, commandFinal: false, limits: limits)
        #expect(throws: WriteTransfer.DataOutError.outOfOrder) {
            try transfer.receiveDataOut(targetTransferTag: 0xFFFF_FFFF, offset: 0, length: 4096, dataSN: 0, final: true)
        }
    }
}
