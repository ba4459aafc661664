import AdminCore
import Hummingbird
import TargetConfig

/// `/v1/targets/{name}/lun-maps`: a target's per-initiator LUN maps (ordered: the first map
/// naming an initiator decides what it sees).
extension APIRoutes {
    func registerLUNMaps(on v1: RouterGroup<Context>) {
        v1.get("targets/:name/lun-maps") { _, c in
            await respond {
                let n = try name(c)
                guard let t = await backend.configuration().target(named: n) else { throw AdminError(.notFound, "no target named \(n)") }
                return t.lunMaps ?? []
            }
        }
        v1.put("targets/:name/lun-maps") { r, c in
            await respond {
                let n = try name(c)
                let maps = try await decode([LUNMapping].self, r)
                return try await editTarget(n) { $0.lunMaps = maps.isEmpty ? nil : maps }
            }
        }
        v1.post("targets/:name/lun-maps") { r, c in
            await respond {
                let n = try name(c)
                let body = try await decode(NewLUNMapRequest.self, r)
                return try await editTarget(n) { t in
                    var maps = t.lunMaps ?? []
                    let at = body.position ?? maps.count
                    guard (0...maps.count).contains(at) else { throw AdminError(.invalid, "position \(at) is out of range 0...\(maps.count)") }
                    maps.insert(body.map, at: at)
                    t.lunMaps = maps
                }
            }
        }
        v1.delete("targets/:name/lun-maps/:index") { _, c in
            await respond {
                let n = try name(c)
                let index = try self.index(c)
                return try await editTarget(n) { t in
                    var maps = t.lunMaps ?? []
                    guard maps.indices.contains(index) else { throw AdminError(.notFound, "target \(n) has no LUN map at position \(index)") }
                    maps.remove(at: index)
                    t.lunMaps = maps.isEmpty ? nil : maps
                }
            }
        }
    }
}
