import NIOCore
import Testing
@testable import ISCSIFabric

/// The recycler must never hand out storage the channel still holds (its bytes are queued for
/// the socket), and must reuse storage nothing holds any more.
@Suite struct BufferRecyclerTests {
    let allocator = ByteBufferAllocator()

    static func address(_ buffer: ByteBuffer) -> UInt {
        buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func aBufferNothingElseHoldsIsReusedEmpty() {
        var recycler = BufferRecycler(slots: 4, maxKeptBytes: 1 << 20)
        var buffer = recycler.take(capacity: 4096, allocator: allocator)
        buffer.writeRepeatingByte(0xAB, count: 4096)
        let storage = Self.address(buffer)
        recycler.give(buffer)
        buffer = ByteBuffer()  // the last other holder lets go
        let again = recycler.take(capacity: 4096, allocator: allocator)
        #expect(Self.address(again) == storage, "the same storage, no new allocation")
        #expect(again.readableBytes == 0 && again.capacity >= 4096)
    }

    @Test func aBufferStillHeldIsNeverHandedOut() {
        var recycler = BufferRecycler(slots: 4, maxKeptBytes: 1 << 20)
        var queued = recycler.take(capacity: 512, allocator: allocator)
        queued.writeRepeatingByte(0x5A, count: 512)
        recycler.give(queued)  // `queued` stands for the channel's pending write
        var next = recycler.take(capacity: 512, allocator: allocator)
        #expect(Self.address(next) != Self.address(queued))
        next.writeRepeatingByte(0x00, count: 512)
        #expect(queued.readableBytesView.allSatisfy { $0 == 0x5A }, "queued bytes unchanged")
        // The held buffer went to the back of the ring and comes out once it is free.
        recycler.give(next)
        let storage = Self.address(queued)
        queued = ByteBuffer()
        next = ByteBuffer()
        let first = recycler.take(capacity: 512, allocator: allocator)
        let second = recycler.take(capacity: 512, allocator: allocator)
        #expect(Self.address(first) == storage || Self.address(second) == storage)
    }

    @Test func theByteBudgetBoundsWhatIsKept() {
        var recycler = BufferRecycler(slots: 8, maxKeptBytes: 8192)
        var buffers = (0..<3).map { _ in allocator.buffer(capacity: 4096) }
        for buffer in buffers { recycler.give(buffer) }
        let keptByTheRing = buffers.indices.map { buffers[$0].modifyIfUniquelyOwned { _ in true } == nil }
        #expect(keptByTheRing == [true, true, false], "8 KiB keeps two 4 KiB buffers")
    }

    @Test func anIdleConnectionLetsItsBuffersGo() {
        var recycler = BufferRecycler(slots: 8, maxKeptBytes: 1 << 20)
        var held = allocator.buffer(capacity: 4096)
        recycler.give(held)
        #expect(held.modifyIfUniquelyOwned { _ in true } == nil, "the ring holds it")
        recycler.removeAll()
        #expect(held.modifyIfUniquelyOwned { _ in true } == true, "the ring let it go")
    }
}
