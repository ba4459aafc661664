import NIOCore
import SCSIEngine

/// The part of a command that runs in the engine (on an I/O worker, on the event loop for a
/// read the page cache serves, or in a store that completes by callback): the engine call with
/// caller-owned memory. Read data goes into a buffer the dispatcher took from its recycler:
/// `reserve` takes its space on the event loop while the buffer is held by nothing else, and
/// the engine fills that space through the pointer (no copy-on-write can move it).
enum CommandExecution {
    struct Outcome: Sendable {
        var result: SCSICommandResult
        var dataIn: ByteBuffer?
    }

    /// Reserved read space handed to an I/O worker with its buffer: the worker is the only
    /// writer until the outcome comes back, and the buffer it travels with keeps it alive.
    struct Space: @unchecked Sendable {
        let vectors: IOVectors
    }

    /// The space for `length` bytes of read data after the buffer's writer index, which stays
    /// where it is until `filled` moves it over what the engine wrote.
    static func reserve(_ buffer: inout ByteBuffer, length: Int) -> IOVectors {
        var space = IOVectors.empty
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { bytes in
            space = IOVectors(UnsafeMutableRawBufferPointer(rebasing: bytes[0..<length]))
            return 0
        }
        return space
    }

    /// On an I/O worker: the command with the space `reserve` gave (empty for no read data).
    static func run(_ request: CommandRequest, device: SCSITarget, nexus: NexusID, dataIn: IOVectors,
                    buffer: ByteBuffer?) -> Outcome {
        let result = request.cdb.withUnsafeBytes { cdb in
            withDataOut(request) { dataOut in
                device.execute(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                               dataOut: dataOut, dataIn: dataIn)
            }
        }
        return Outcome(result: result, dataIn: filled(buffer, result: result, length: request.readLength))
    }

    /// A read whose data is already in the page cache, answered without blocking (preadv2
    /// RWF_NOWAIT) into the reserved space: the outcome, or nil (then the I/O thread runs it
    /// with the same space).
    static func runWithoutBlocking(_ request: CommandRequest, device: SCSITarget, nexus: NexusID, dataIn: IOVectors,
                                   buffer: ByteBuffer) -> Outcome? {
        let result = request.cdb.withUnsafeBytes { cdb in
            device.executeWithoutBlocking(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                                          dataIn: dataIn)
        }
        guard let result else { return nil }
        return Outcome(result: result, dataIn: filled(buffer, result: result, length: request.readLength))
    }

    /// A READ or WRITE for a store that completes by callback (librbd), handed to it from the
    /// event loop: `completion` gets the outcome on the store's thread. False when the engine
    /// did not take it (the caller then runs it on a worker with the same space).
    static func submit(_ request: CommandRequest, device: SCSITarget, nexus: NexusID, dataIn: IOVectors,
                       buffer: ByteBuffer?, completion: @escaping @Sendable (Outcome) -> Void) -> Bool {
        request.cdb.withUnsafeBytes { cdb in
            withDataOut(request) { dataOut in
                // The closure keeps the request (its Data-Out) and the buffer alive until the store is done.
                device.submit(cdb: cdb, lun: request.lun, nexus: nexus, attribute: request.attribute,
                              dataOut: dataOut, dataIn: dataIn) { [request, buffer] result in
                    withExtendedLifetime(request) {
                        completion(Outcome(result: result, dataIn: filled(buffer, result: result, length: request.readLength)))
                    }
                }
            }
        }
    }

    /// The buffer with its writer index moved over the bytes the engine returned (an index
    /// move, not a write: the storage is not copied).
    private static func filled(_ buffer: ByteBuffer?, result: SCSICommandResult, length: Int) -> ByteBuffer? {
        guard var buffer else { return nil }
        buffer.moveWriterIndex(forwardBy: min(result.dataInCount, length))
        return buffer
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
