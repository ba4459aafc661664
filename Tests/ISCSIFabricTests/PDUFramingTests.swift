import NIOCore
import Testing
@testable import ISCSIFabric

@Suite struct PDUFramingTests {
    func nopOut(data: [UInt8], itt: UInt32 = 0x1234_5678) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0x40))  // I | NOP-Out
        buffer.writeInteger(UInt8(0x80))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt8(0))  // TotalAHSLength
        buffer.writeInteger(UInt8(data.count >> 16))
        buffer.writeInteger(UInt16(data.count & 0xFFFF))
        buffer.writeInteger(UInt64(0))  // LUN
        buffer.writeInteger(itt)
        buffer.writeInteger(UInt32(0xFFFF_FFFF))  // TTT
        buffer.writeInteger(UInt32(7))  // CmdSN
        buffer.writeInteger(UInt32(9))  // ExpStatSN
        buffer.writeRepeatingByte(0, count: 16)
        buffer.writeBytes(data)
        buffer.writeRepeatingByte(0, count: (4 - data.count % 4) % 4)
        return buffer
    }

    @Test func framesHeaderAndDataWithPadding() throws {
        var buffer = nopOut(data: [1, 2, 3, 4, 5])
        #expect(buffer.readableBytes == 48 + 8)
        guard case .pdu(let pdu) = try PDUDecoder.frame(&buffer, digests: .init(), maxDataSegmentLength: 8192) else {
            Issue.record("no PDU"); return
        }
        #expect(pdu.opcode == .nopOut)
        #expect(pdu.isImmediate)
        #expect(pdu.isFinal)
        #expect(pdu.initiatorTaskTag == 0x1234_5678)
        #expect(pdu.cmdSN == 7)
        #expect(pdu.expStatSN == 9)
        #expect(Array(pdu.data.readableBytesView) == [1, 2, 3, 4, 5])
        #expect(buffer.readableBytes == 0)
    }

    @Test func waitsForTheWholePDU() throws {
        let full = nopOut(data: Array(repeating: 0xAB, count: 100))
        for cut in [0, 10, 47, 48, 100, full.readableBytes - 1] {
            var partial = full.getSlice(at: 0, length: cut)!
            #expect(try PDUDecoder.frame(&partial, digests: .init(), maxDataSegmentLength: 8192) == nil)
            #expect(partial.readableBytes == cut)
        }
    }

    @Test func rejectsOversizedDataSegment() {
        var buffer = nopOut(data: Array(repeating: 0, count: 9000))
        #expect(throws: PDUFramingError.dataSegmentTooLong(length: 9000, limit: 8192)) {
            try PDUDecoder.frame(&buffer, digests: .init(), maxDataSegmentLength: 4096)
        }
    }

    @Test func digestsRoundTripThroughTheWriter() throws {
        let allocator = ByteBufferAllocator()
        var header = OutboundHeader(.nopIn, allocator: allocator)
        header.setInitiatorTaskTag(42)
        var data = allocator.buffer(capacity: 3)
        data.writeBytes([9, 8, 7])
        let writer = PDUWriter(digests: .init(header: true, data: true))
        let (head, body, trailer) = writer.encode(&header, data: data, allocator: allocator)
        #expect(head.readableBytes == 52)
        #expect(trailer?.readableBytes == 1 + 4)
        var wire = head
        var bodyCopy = body!
        wire.writeBuffer(&bodyCopy)
        var trailerCopy = trailer!
        wire.writeBuffer(&trailerCopy)
        guard case .pdu(let pdu) = try PDUDecoder.frame(&wire, digests: .init(header: true, data: true), maxDataSegmentLength: 8192) else {
            Issue.record("digest check failed"); return
        }
        #expect(pdu.initiatorTaskTag == 42)
        #expect(Array(pdu.data.readableBytesView) == [9, 8, 7])
    }

    @Test func corruptDigestsAreDetected() throws {
        let allocator = ByteBufferAllocator()
        var header = OutboundHeader(.nopIn, allocator: allocator)
        header.setInitiatorTaskTag(1)
        var data = allocator.buffer(capacity: 4)
        data.writeBytes([1, 2, 3, 4])
        let (head, body, trailer) = PDUWriter(digests: .init(header: true, data: true)).encode(&header, data: data, allocator: allocator)
        var wire = head
        wire.writeImmutableBuffer(body!)
        wire.writeImmutableBuffer(trailer!)
        var badData = wire
        badData.setInteger(UInt8(0xEE), at: 52)  // first data byte
        guard case .dataDigestError = try PDUDecoder.frame(&badData, digests: .init(header: true, data: true), maxDataSegmentLength: 8192) else {
            Issue.record("data digest error not reported"); return
        }
        var badHeader = wire
        badHeader.setInteger(UInt8(0x77), at: 20)
        #expect(throws: PDUFramingError.headerDigestMismatch) {
            try PDUDecoder.frame(&badHeader, digests: .init(header: true, data: true), maxDataSegmentLength: 8192)
        }
    }

    @Test func lunEncodingRoundTrips() {
        for lun: UInt64 in [0, 1, 255, 256, 16383] {
            #expect(LUNEncoding.decode(LUNEncoding.encode(lun)) == lun)
        }
        #expect(LUNEncoding.encode(3) == 0x0003_0000_0000_0000)
        #expect(LUNEncoding.encode(300) == 0x412C_0000_0000_0000)
    }
}
