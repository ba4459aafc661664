import AdminCore
import Foundation
import Hummingbird
import TargetConfig

/// `/v1/config`: the whole configuration. Reading it redacted is in the main table; here are
/// the file itself with its secrets (for save-config), a whole configuration put in force
/// (restore-config) and a reload of the daemon's own file.
extension APIRoutes {
    /// Largest configuration a restore takes (a thousand targets are a few hundred KiB).
    static let largestConfiguration = 16 << 20

    func registerConfig(on v1: RouterGroup<Context>) {
        // The configuration file as the daemon would write it, CHAP secrets included: the API
        // socket is the admins' (mode 0660), and a restore must give the secrets back.
        v1.get("config/file") { _, _ in
            do {
                // The file's own bytes (it ends in its newline already).
                let file = try ConfigFile.encode(await backend.configuration())
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: file)))
            } catch {
                return errorResponse(AdminError(.failed, "\(error)"))
            }
        }
        v1.put("config") { r, _ in
            await respond {
                let buffer = try await r.body.collect(upTo: Self.largestConfiguration)
                let name = r.uri.queryParameters.get("file").map { String($0) } ?? "request body"
                let restored: Config
                do {
                    restored = try ConfigFile.decode(Data(buffer.readableBytesView), fileName: name).config
                } catch let error as ConfigError {
                    throw AdminError(.invalid, error.errors.map(\.description).joined(separator: "\n"))
                }
                return try await backend.update { $0 = restored }
            }
        }
        v1.post("config/reload") { _, _ in await respond { try await backend.reload() } }
    }
}
