import Foundation
import TargetConfig

/// `config`: the configuration loader on file bytes (`ConfigFile.decode`: JSON tree parser
/// with line numbers, strict decoder that reports unknown fields, validation, generated LUN
/// identities), then what the daemon derives from a loaded configuration.
///
/// Input: the file.
/// Invariants: a loaded configuration saves (canonical encoding) and loads back equal, with
/// nothing left to generate; effective settings, access rules, redaction and the change list
/// against the empty configuration work on it.
enum ConfigFuzz {
    static let target = FuzzTarget(name: "config", summary: "ConfigFile.decode and what is derived from a config", run: run)

    static let initiators = ["iqn.1994-05.com.redhat:client1", "iqn.1991-05.com.microsoft:db1-host-a", ""]
    static let addresses = ["192.0.2.5", "2001:db8:10::5", "not-an-address"]

    static func run(_ bytes: [UInt8]) {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigFile.decode(Data(bytes))
        } catch {
            fuzzLog("config: \(error)")
            return
        }
        let config = loaded.config
        fuzzLog("config: loaded, \(config.targets.count) targets, \(loaded.warnings.count) warnings")
        let again: LoadedConfig
        do {
            again = try ConfigFile.decode(try ConfigFile.encode(config))
        } catch {
            fuzzFailure("a loaded configuration does not load back after saving: \(error)")
        }
        guard again.config == config else { fuzzFailure("a saved configuration loads back different") }
        guard again.generatedIdentities.isEmpty else { fuzzFailure("identities generated again after saving") }

        for t in config.effectiveTargets {
            for name in initiators {
                for address in addresses { _ = t.allowsLogin(initiatorName: name, address: address) }
            }
            _ = t.isExposed(onLocalAddress: addresses[0])
            _ = t.advertisedPortals(of: config.portals)
        }
        _ = config.discoverableTargets(initiatorName: initiators[0], address: addresses[0], localAddress: addresses[0])
        let redacted = config.redactingSecrets()
        _ = ConfigChange.effects(from: Config(), to: config)
        _ = ConfigChange.effects(from: config, to: redacted)
    }
}
