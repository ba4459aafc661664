import NIOCore
import SCSIEngine
import Testing
@testable import ISCSIFabric

/// Tier 1: the full-feature state machine alone, fed PDUs as bytes, no sockets, no engine.
@Suite struct SessionStateMachineTests {
    static func machine(initialR2T: Bool = true, maxBuffered: Int = 64 << 20, segment: UInt32 = 8192,
                        burst: UInt32 = 262_144) -> SessionStateMachine {
        var parameters = NegotiatedParameters()
        parameters.initialR2T = initialR2T
        parameters.immediateData = true
        parameters.maxXmitDataSegmentLength = segment
        parameters.maxBurstLength = burst
        parameters.firstBurstLength = 65536
        parameters.maxOutstandingR2T = 1
        return SessionStateMachine(
            configuration: .init(parameters: parameters, servesCommands: true, windowDepth: 8,
                                 maxBufferedWriteBytes: maxBuffered, lunExists: { $0 == 0 },
                                 answerText: { _ in Array("TargetName=iqn.x\0".utf8) }),
            expCmdSN: 10, statSN: 100)
    }

    /// A BHS with the given fields (big-endian at their §11 offsets) and an optional data segment.
    static func pdu(_ opcode: UInt8, flags: UInt8, itt: UInt32, cmdSN: UInt32 = 0, field20: UInt32 = 0,
                    field36: UInt32 = 0, field40: UInt32 = 0, cdb: [UInt8] = [], ahs: [UInt8] = [],
                    data: [UInt8] = []) -> PDU {
        var header = ByteBuffer(repeating: 0, count: 48)
        header.setInteger(opcode, at: 0)
        header.setInteger(flags, at: 1)
        header.setInteger(UInt8(ahs.count / 4), at: 4)
        header.setInteger(itt, at: 16)
        header.setInteger(field20, at: 20)
        header.setInteger(cmdSN, at: 24)
        header.setInteger(field36, at: 36)
        header.setInteger(field40, at: 40)
        if !cdb.isEmpty { header.setBytes(cdb, at: 32) }
        return PDU(header: header, additionalHeaders: ByteBuffer(bytes: ahs), data: ByteBuffer(bytes: data))
    }

    static func write10(blocks: UInt16) -> [UInt8] { [0x2A, 0, 0, 0, 0, 0, 0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0] }
    static func read10(blocks: UInt16) -> [UInt8] { [0x28, 0, 0, 0, 0, 0, 0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0] }

    @Test func writeWithImmediateDataThenR2TThenExecuteThenStatus() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x20 | 1, itt: 7, cmdSN: 10, field20: 8192,
                           cdb: Self.write10(blocks: 16), data: [UInt8](repeating: 0xAB, count: 4096)), into: &actions)
        guard actions.count == 1, case .send(.readyToTransfer(let r2t)) = actions[0] else {
            Issue.record("expected one R2T, got \(actions)"); return
        }
        #expect(r2t.initiatorTaskTag == 7 && r2t.bufferOffset == 4096 && r2t.desiredLength == 4096 && r2t.r2tSN == 0)
        #expect(r2t.numbers.statSN == 100, "R2T carries StatSN without consuming it")
        #expect(m.bufferedWriteBytes == 8192)
        actions.removeAll()
        m.receive(Self.pdu(0x05, flags: 0x80, itt: 7, field20: r2t.targetTransferTag, field40: 4096,
                           data: [UInt8](repeating: 0xCD, count: 4096)), into: &actions)
        guard actions.count == 1, case .execute(let request) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(request.writeLength == 8192 && request.readLength == 0)
        #expect(request.writeBuffer.map { Array($0.bytes[4090..<4100]) } == [0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xCD, 0xCD, 0xCD, 0xCD])
        actions.removeAll()
        m.commandCompleted(7, result: SCSICommandResult(status: .good, transferLength: 8192), dataIn: nil, into: &actions)
        guard case .send(.scsiResponse(let response)) = actions.first else { Issue.record("\(actions)"); return }
        #expect(response.status == .good && response.residualFlags == 0 && response.numbers.statSN == 100)
        #expect(response.numbers.expCmdSN == 11)
        #expect(m.bufferedWriteBytes == 0 && m.tasksInTable == 0)
    }

    @Test func commandsAreDeliveredInCmdSNOrder() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 2, cmdSN: 11, cdb: [0x00]), into: &actions)
        #expect(actions.isEmpty, "CmdSN 11 waits for 10")
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 1, cmdSN: 10, cdb: [0x00]), into: &actions)
        let tags = actions.compactMap { action -> UInt32? in
            if case .execute(let r) = action { return r.initiatorTaskTag } else { return nil }
        }
        #expect(tags == [1, 2])
    }

    @Test func malformedAHSIsRejectedAndStillTakesItsCmdSN() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 1, cmdSN: 10, cdb: [0x00], ahs: [0, 0, 1, 0]), into: &actions)
        guard actions.count == 1, case .send(.reject(let reject)) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(reject.reason == .invalidPDUField && reject.numbers.statSN == 100 && reject.header.readableBytes == 48)
        actions.removeAll()
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 2, cmdSN: 11, cdb: [0x00]), into: &actions)
        guard case .execute(let next) = actions.first else { Issue.record("CmdSN 11 held: \(actions)"); return }
        #expect(next.initiatorTaskTag == 2)
    }

    @Test func dataInIsSegmentedWithStatusInTheLast() {
        var m = Self.machine(segment: 4096, burst: 8192)
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x40 | 1, itt: 3, cmdSN: 10, field20: 12288, cdb: Self.read10(blocks: 24)), into: &actions)
        actions.removeAll()
        let data = ByteBuffer(bytes: (0..<12288).map { UInt8(truncatingIfNeeded: $0) })
        m.commandCompleted(3, result: SCSICommandResult(status: .good, dataInCount: 12288, transferLength: 12288),
                           dataIn: data, into: &actions)
        let dataIns = actions.compactMap { action -> TargetPDU.DataIn? in
            if case .send(.dataIn(let d)) = action { return d } else { return nil }
        }
        #expect(actions.count == 3 && dataIns.count == 3)
        #expect(dataIns.map(\.dataSN) == [0, 1, 2])
        #expect(dataIns.map(\.bufferOffset) == [0, 4096, 8192])
        // F at the end of each MaxBurstLength sequence; status only in the last.
        #expect(dataIns.map(\.final) == [false, true, true])
        #expect(dataIns.map { $0.status == nil } == [true, true, false])
        #expect(dataIns[2].numbers.statSN == 100 && dataIns[2].data.getInteger(at: dataIns[2].data.readerIndex, as: UInt8.self) == 0)
    }

    @Test func closingDropsWaitingWritesAndTheirBuffers() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x20 | 1, itt: 7, cmdSN: 10, field20: 1 << 20,
                           cdb: Self.write10(blocks: 2048), data: [UInt8](repeating: 1, count: 4096)), into: &actions)
        #expect(m.bufferedWriteBytes == 1 << 20 && m.tasksInTable == 1)
        m.connectionClosed()
        #expect(m.bufferedWriteBytes == 0 && m.tasksInTable == 0)
        actions.removeAll()
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 8, cmdSN: 11, cdb: [0x00]), into: &actions)
        #expect(actions.isEmpty, "nothing happens after the close")
    }

    @Test func bufferedWritesOverTheCapAreAnsweredTaskSetFull() {
        var m = Self.machine(maxBuffered: 1 << 20)
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x20 | 1, itt: 1, cmdSN: 10, field20: 1 << 20, cdb: Self.write10(blocks: 2048)), into: &actions)
        actions.removeAll()
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x20 | 1, itt: 2, cmdSN: 11, field20: 4096, cdb: Self.write10(blocks: 8)), into: &actions)
        guard case .send(.scsiResponse(let response)) = actions.first else { Issue.record("\(actions)"); return }
        #expect(response.status == .taskSetFull && response.initiatorTaskTag == 2)
        #expect(m.bufferedWriteBytes == 1 << 20)
    }

    @Test func logoutWaitsForTheCommandInTheEngine() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 1, itt: 1, cmdSN: 10, cdb: [0x00]), into: &actions)
        actions.removeAll()
        m.receive(Self.pdu(0x06 | 0x40, flags: 0x80, itt: 9, cmdSN: 11), into: &actions)
        #expect(actions.isEmpty, "the logout response waits for task 1")
        m.commandCompleted(1, result: SCSICommandResult(status: .good), dataIn: nil, into: &actions)
        guard actions.count == 3, case .send(.scsiResponse) = actions[0], case .send(.logoutResponse(let logout)) = actions[1],
              case .close = actions[2] else { Issue.record("\(actions)"); return }
        #expect(logout.response == .closedSuccessfully && logout.initiatorTaskTag == 9 && logout.numbers.statSN == 101)
    }

    @Test func abortTaskDropsAWaitingWriteAndIsComplete() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        m.receive(Self.pdu(0x01, flags: 0x80 | 0x20 | 1, itt: 5, cmdSN: 10, field20: 8192, cdb: Self.write10(blocks: 16)), into: &actions)
        actions.removeAll()
        m.receive(Self.pdu(0x02 | 0x40, flags: 0x80 | 1, itt: 6, cmdSN: 11, field20: 5), into: &actions)
        guard case .send(.taskManagementResponse(let tmf)) = actions.first else { Issue.record("\(actions)"); return }
        #expect(tmf.response == .functionComplete && m.tasksInTable == 0 && m.bufferedWriteBytes == 0)
        actions.removeAll()
        m.receive(Self.pdu(0x02 | 0x40, flags: 0x80 | 5, itt: 7, cmdSN: 11), into: &actions)
        guard case .taskManagement(let request) = actions.first else { Issue.record("\(actions)"); return }
        #expect(request.function == .logicalUnitReset && request.lun == 0)
    }

    @Test func unansweredPingClosesTheSession() {
        var m = Self.machine()
        var actions: [SessionAction] = []
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(!m.pingDue(now: t0, timeout: .seconds(5), into: &actions))
        guard case .send(.nopIn(let ping)) = actions.first else { Issue.record("\(actions)"); return }
        #expect(ping.initiatorTaskTag == 0xFFFF_FFFF && ping.numbers.statSN == 100)
        actions.removeAll()
        #expect(!m.pingDue(now: t0 + .seconds(2), timeout: .seconds(5), into: &actions) && actions.isEmpty)
        #expect(m.pingDue(now: t0 + .seconds(6), timeout: .seconds(5), into: &actions))
        guard case .close = actions.first else { Issue.record("\(actions)"); return }
    }
}
