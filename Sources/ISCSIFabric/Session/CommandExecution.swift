import NIOCore
import SCSIEngine

/// The part of a command that runs in the engine (on an I/O worker, or on the event loop for
/// a read the page cache serves): the engine call with caller-owned memory.
enum CommandExecution {
    struct Outcome: Sendable {
        var result: SCSICommandResult
        var dataIn: ByteBuffer?
    }

    static func run(_ request: CommandRequest, device: SCSITarget, nexus: NexusID, readBuffer: ByteBuffer?,
                    allocator: ByteBufferAllocator) -> Outcome {
        request.cdb.withUnsafeBytes { cdb in
            withDataOut(request) { dataOut in
                guard request.readLength > 0 else {
                    let result = device.execute(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                                                dataOut: dataOut, dataIn: .empty)
                    return Outcome(result: result, dataIn: nil)
                }
                let length = request.readLength
                var dataIn = readBuffer ?? allocator.buffer(capacity: length)
                var result = SCSICommandResult(status: .good)
                dataIn.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { space in
                    result = device.execute(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                                            dataOut: dataOut,
                                            dataIn: IOVectors(UnsafeMutableRawBufferPointer(rebasing: space[0..<length])))
                    return min(result.dataInCount, length)
                }
                return Outcome(result: result, dataIn: dataIn)
            }
        }
    }

    /// A read whose data is already in the page cache, answered without blocking (preadv2
    /// RWF_NOWAIT): the outcome, or nil and the buffer for the I/O thread (one allocation either way).
    static func runWithoutBlocking(_ request: CommandRequest, device: SCSITarget, nexus: NexusID,
                                   allocator: ByteBufferAllocator) -> (outcome: Outcome?, buffer: ByteBuffer) {
        let length = request.readLength
        var buffer = allocator.buffer(capacity: length)
        var result: SCSICommandResult?
        _ = request.cdb.withUnsafeBytes { cdb in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { space in
                result = device.executeWithoutBlocking(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                                                       dataIn: IOVectors(UnsafeMutableRawBufferPointer(rebasing: space[0..<length])))
                return min(result?.dataInCount ?? 0, length)
            }
        }
        guard let result else { return (nil, buffer) }
        return (Outcome(result: result, dataIn: buffer), buffer)
    }

    /// A READ or WRITE for a store that completes by callback (librbd), handed to it from the
    /// event loop: `completion` gets the outcome on the store's thread. When the engine did not
    /// take it, the read buffer goes to the I/O thread (one allocation either way).
    static func submit(_ request: CommandRequest, device: SCSITarget, nexus: NexusID, allocator: ByteBufferAllocator,
                       completion: @escaping @Sendable (Outcome) -> Void) -> (taken: Bool, buffer: ByteBuffer?) {
        let length = request.readLength
        var buffer: ByteBuffer?
        var dataIn = IOVectors.empty
        if length > 0 {
            // The store fills the space after this returns; the closure below keeps the storage
            // alive and moves the writer index over what it got.
            var space = allocator.buffer(capacity: length)
            space.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { bytes in
                dataIn = IOVectors(UnsafeMutableRawBufferPointer(rebasing: bytes[0..<length]))
                return 0
            }
            buffer = space
        }
        let taken = request.cdb.withUnsafeBytes { cdb in
            withDataOut(request) { dataOut in
                device.submit(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                              dataOut: dataOut, dataIn: dataIn) { [request, buffer] result in
                    withExtendedLifetime(request) {
                        var filled = buffer
                        filled?.moveWriterIndex(forwardBy: min(result.dataInCount, length))
                        completion(Outcome(result: result, dataIn: filled))
                    }
                }
            }
        }
        return (taken, taken ? nil : buffer)
    }

    private static func withDataOut<T>(_ request: CommandRequest, _ body: (IOVectors) -> T) -> T {
        if let buffer = request.writeBuffer {
            return body(IOVectors(UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<request.writeLength])))
        }
        // All data came as immediate data: the receive buffer itself (no copy).
        return request.immediateData.withUnsafeReadableBytes { bytes in
            body(IOVectors(UnsafeMutableRawBufferPointer(mutating: bytes)))
        }
    }
}
