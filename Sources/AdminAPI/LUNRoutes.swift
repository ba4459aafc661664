import AdminCore
import Hummingbird
import TargetConfig

/// `/v1/targets/{name}/luns`: a target's LUNs, added, changed in place and removed live.
extension APIRoutes {
    func registerLUNs(on v1: RouterGroup<Context>) {
        v1.post("targets/:name/luns") { r, c in
            await respond {
                let n = try name(c)
                let body = try await decode(NewLUNRequest.self, r)
                return try await addLUN(n, body)
            }
        }
        v1.delete("targets/:name/luns/:id") { _, c in
            await respond {
                let n = try name(c)
                guard let id = c.parameters.get("id").flatMap(Int.init) else { throw AdminError(.invalid, "LUN id must be a number") }
                return try await backend.update { config in
                    guard let i = config.targetIndex(named: n) else { throw AdminError(.notFound, "no target named \(n)") }
                    guard let j = config.targets[i].luns.firstIndex(where: { $0.id == id }) else {
                        throw AdminError(.notFound, "target \(n) has no LUN \(id)")
                    }
                    config.targets[i].luns.remove(at: j)
                    // Its mappings go with it (as LIO's mapped LUNs go with the TPG LUN).
                    if let maps = config.targets[i].lunMaps {
                        config.targets[i].lunMaps = maps.map { m in
                            var m = m
                            m.luns.removeAll { $0.lun == id }
                            return m
                        }
                    }
                }
            }
        }
        v1.patch("targets/:name/luns/:id") { r, c in
            await respond {
                let n = try name(c)
                guard let id = c.parameters.get("id").flatMap(Int.init) else { throw AdminError(.invalid, "LUN id must be a number") }
                let body = try await decode(LUNEditRequest.self, r)
                let cache = try body.writeCache.map(writeCacheMode)
                // The size served (an existing image's own, when the configuration names none).
                let served = await backend.targetStatuses().first { $0.name.lowercased() == n.lowercased() }?.lunSizes[id]
                return try await editTarget(n) { t in
                    guard let j = t.luns.firstIndex(where: { $0.id == id }) else { throw AdminError(.notFound, "target \(n) has no LUN \(id)") }
                    if let size = body.size {
                        let now = max(t.luns[j].size ?? 0, served ?? 0)
                        if size < now { throw AdminError(.invalid, "LUN \(id) is \(now) bytes; shrinking it to \(size) would cut off data the initiators wrote, so it is refused") }
                        t.luns[j].size = size
                    }
                    if let readOnly = body.readOnly { t.luns[j].readOnly = readOnly }
                    if let cache { t.luns[j].writeCache = cache }
                }
            }
        }
    }

    func addLUN(_ target: String, _ body: NewLUNRequest) async throws -> ApplyReport {
        guard let kind = TargetConfig.BackstoreKind(rawValue: body.backstore) else {
            throw AdminError(.invalid, "backstore must be \(BackstoreKind.spokenList)")
        }
        let mode = try body.writeCache.map(writeCacheMode) ?? .writeThrough
        return try await backend.update { config in
            guard let i = config.targetIndex(named: target) else { throw AdminError(.notFound, "no target named \(target)") }
            if let id = body.id, config.targets[i].lun(id) != nil {
                throw AdminError(.conflict, "target \(target) already has LUN \(id)")
            }
            try config.addLUN(toTarget: target, id: body.id, backstore: kind, path: body.path, size: body.size,
                              readOnly: body.readOnly ?? false, writeCache: mode, options: body.options ?? [:])
        }
    }

    func writeCacheMode(_ text: String) throws -> WriteCacheMode {
        guard let mode = WriteCacheMode(rawValue: text) else { throw AdminError(.invalid, "writeCache must be write-back or write-through") }
        return mode
    }
}
