@testable import ISCSIFabric
import NIOCore
import SCSIEngine

/// `session`: the full-feature phase state machine (`SessionStateMachine`) fed the PDUs an
/// initiator sends after login, with the engine's answers coming back in an input-chosen order.
///
/// Input: [flags] [seed] stream…
///   flags bit 0: InitialR2T; bit 1: ImmediateData; bits 2–4: MaxXmitDataSegmentLength 512 << n;
///   bits 5–7: MaxBurstLength 4096 << n. `seed` drives when each command's result arrives
///   (at once, after the next PDU, or at the end) and whether it succeeds.
/// Invariants: StatSN advances by one per status-bearing PDU; Data-In of a command covers its
/// data exactly, in order, in segments no longer than negotiated, DataSN counting from 0;
/// buffered write bytes never go negative, are 0 once the connection closed, and the task
/// table empties when every result is in; nothing is sent after a close.
enum SessionFuzz {
    static let target = FuzzTarget(name: "session", summary: "full-feature session state machine", run: run)

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let flags = input.byte()
        var random = SplitMix64(seed: UInt64(input.byte()) &* 0x9E37_79B9 &+ UInt64(bytes.count))
        var parameters = NegotiatedParameters()
        parameters.initialR2T = flags & 1 != 0
        parameters.immediateData = flags & 2 != 0
        parameters.maxXmitDataSegmentLength = 512 << UInt32((flags >> 2) & 7)
        parameters.maxBurstLength = 4096 << UInt32((flags >> 5) & 7)
        parameters.firstBurstLength = min(65536, parameters.maxBurstLength)
        parameters.maxOutstandingR2T = 2
        var checker = Checker(segment: Int(parameters.maxXmitDataSegmentLength), nextStatSN: 1)
        var actions: [SessionAction] = []
        var pending: [CommandRequest] = []

        var stream = ByteBufferAllocator().buffer(capacity: input.remaining)
        stream.writeBytes(input.rest())
        // The window starts where the captured session's numbering does (its first CmdSN).
        let firstCmdSN = stream.readableBytes >= 28 ? stream.getInteger(at: stream.readerIndex + 24, as: UInt32.self)! : 0
        var machine = SessionStateMachine(
            configuration: .init(parameters: parameters, servesCommands: true, windowDepth: 16,
                                 maxBufferedWriteBytes: 4 << 20, lunExists: { $0 < 2 },
                                 answerText: { _ in Array("TargetName=iqn.2026-01.org.example:fuzz\0".utf8) }),
            expCmdSN: firstCmdSN, statSN: 1)
        var pdus = 0
        while pdus < 256, let framed = try? PDUDecoder.frame(&stream, digests: DigestSettings(), maxDataSegmentLength: 65536) {
            pdus += 1
            switch framed {
            case .pdu(let pdu): machine.receive(pdu, into: &actions)
            case .dataDigestError(let pdu): machine.receiveDataDigestError(header: pdu.header, into: &actions)
            }
            carryOut(&actions, machine: &machine, pending: &pending, checker: &checker, random: &random, now: true)
            // Results that waited one PDU arrive now, in a shuffled order.
            if !pending.isEmpty, random.next() & 1 == 0 {
                let due = pending
                pending.removeAll()
                for request in due.shuffled(using: &random) { complete(request, &machine, &actions, &random) }
                carryOut(&actions, machine: &machine, pending: &pending, checker: &checker, random: &random, now: true)
            }
            guard machine.bufferedWriteBytes >= 0 else { fuzzFailure("buffered write bytes below zero") }
        }
        // The connection closes with results still out; they arrive afterwards.
        machine.connectionClosed()
        guard machine.bufferedWriteBytes == 0 else { fuzzFailure("\(machine.bufferedWriteBytes) buffered bytes after close") }
        for request in pending { complete(request, &machine, &actions, &random) }
        pending.removeAll()
        carryOut(&actions, machine: &machine, pending: &pending, checker: &checker, random: &random, now: true)
        guard machine.tasksInTable == 0 else { fuzzFailure("\(machine.tasksInTable) tasks left after every result") }
        fuzzLog("session: \(pdus) PDUs, StatSN reached \(checker.nextStatSN)")
    }

    private static func carryOut(_ actions: inout [SessionAction], machine: inout SessionStateMachine,
                                 pending: inout [CommandRequest], checker: inout Checker,
                                 random: inout SplitMix64, now: Bool) {
        var index = 0
        while index < actions.count {
            let action = actions[index]
            index += 1
            if checker.closed { fuzzFailure("action after close: \(action)") }
            switch action {
            case .send(let pdu): checker.check(pdu)
            case .close: checker.closed = true
            case .taskManagement(let request):
                machine.taskManagementCompleted(request, response: .functionComplete, into: &actions)
            case .execute(let request):
                if random.next() % 3 == 0 { complete(request, &machine, &actions, &random) } else { pending.append(request) }
            }
        }
        actions.removeAll(keepingCapacity: true)
    }

    /// The engine's answer: good with all the data, a short read, or CHECK CONDITION.
    private static func complete(_ request: CommandRequest, _ machine: inout SessionStateMachine,
                                 _ actions: inout [SessionAction], _ random: inout SplitMix64) {
        let choice = random.next() % 4
        let length = choice == 1 ? request.readLength / 2 : request.readLength
        let result = choice == 3
            ? SCSICommandResult(status: .checkCondition, sense: SessionStateMachine.sense(key: 5, asc: 0x24, ascq: 0))
            : SCSICommandResult(status: .good, dataInCount: length, transferLength: max(request.readLength, request.writeLength))
        let data = length > 0 ? ByteBuffer(repeating: 0x5A, count: length) : nil
        machine.commandCompleted(request.initiatorTaskTag, result: result, dataIn: data, into: &actions)
    }

    /// What the wire must show.
    struct Checker {
        let segment: Int
        var nextStatSN: UInt32
        var closed = false
        /// Per ITT: the next Data-In offset and DataSN.
        var dataIn: [UInt32: (offset: UInt32, dataSN: UInt32)] = [:]

        mutating func check(_ pdu: TargetPDU) {
            switch pdu {
            case .scsiResponse(let r):
                consume(r.numbers)
                dataIn[r.initiatorTaskTag] = nil
            case .dataIn(let d):
                let expected = dataIn[d.initiatorTaskTag] ?? (0, 0)
                guard d.bufferOffset == expected.offset, d.dataSN == expected.dataSN else {
                    fuzzFailure("Data-In out of order: offset \(d.bufferOffset) DataSN \(d.dataSN), expected \(expected)")
                }
                guard d.data.readableBytes > 0, d.data.readableBytes <= segment else {
                    fuzzFailure("Data-In of \(d.data.readableBytes) bytes (segment \(segment))")
                }
                dataIn[d.initiatorTaskTag] = (expected.offset + UInt32(d.data.readableBytes), expected.dataSN + 1)
                if d.status != nil {
                    consume(d.numbers)
                    dataIn[d.initiatorTaskTag] = nil
                } else if d.numbers.statSN != 0 && d.numbers.statSN != nextStatSN {
                    fuzzFailure("Data-In without status carries StatSN \(d.numbers.statSN), next is \(nextStatSN)")
                }
            case .taskManagementResponse(let t): consume(t.numbers)
            case .textResponse(let t): consume(t.numbers)
            case .logoutResponse(let l): consume(l.numbers)
            case .reject(let r): consume(r.numbers)
            case .asyncLogoutRequest(_, let n): consume(n)
            case .nopIn(let n):
                // An answer to a ping consumes StatSN; our own ping (ITT reserved) does not.
                if n.initiatorTaskTag != 0xFFFF_FFFF { consume(n.numbers) } else { peek(n.numbers) }
            case .readyToTransfer(let r): peek(r.numbers)
            case .loginResponse: fuzzFailure("login response in full feature phase")
            }
        }

        private mutating func consume(_ numbers: SequenceNumbers) {
            guard numbers.statSN == nextStatSN else { fuzzFailure("StatSN \(numbers.statSN), expected \(nextStatSN)") }
            nextStatSN &+= 1
            window(numbers)
        }

        private func peek(_ numbers: SequenceNumbers) {
            guard numbers.statSN == nextStatSN else { fuzzFailure("StatSN \(numbers.statSN) carried, next is \(nextStatSN)") }
            window(numbers)
        }

        private func window(_ numbers: SequenceNumbers) {
            // MaxCmdSN + 1 >= ExpCmdSN in serial arithmetic (RFC 7143 §3.2.2.1).
            guard (numbers.maxCmdSN &+ 1 &- numbers.expCmdSN) < 0x8000_0000 else {
                fuzzFailure("window ExpCmdSN \(numbers.expCmdSN) MaxCmdSN \(numbers.maxCmdSN)")
            }
        }
    }
}
