import ArgumentParser
import ChpkiCore
import Foundation

/// What bash, zsh and fish complete where an argument names something other than a file: the
/// built-in template names, and the hosts and services of the inventory the command line would
/// use. Files and directories are `.file()` / `.directory` at each option.
enum Completions {
    /// Override files only replace built-in names, so the built-in list is every valid name; it is
    /// written into the script, no chpki run at TAB.
    static let templateNames = CompletionKind.list(Templates.builtInNames)

    /// Host FQDNs and short names.
    static let hosts = CompletionKind.custom { words, _, _ in
        inventory(words).map { hostNames(of: $0) } ?? []
    }

    /// Service names.
    static let services = CompletionKind.custom { words, _, _ in
        inventory(words).map { $0.services.map(\.name) } ?? []
    }

    /// `revoke`'s target: a host, or host/service for each service on it.
    static let hostsAndServices = CompletionKind.custom { words, _, _ in
        guard let inventory = inventory(words) else { return [] }
        let perService = inventory.services.flatMap { service in
            service.hostNames.compactMap { inventory.host(named: $0) }.map { "\($0.shortName)/\(service.name)" }
        }
        return hostNames(of: inventory) + perService.sorted()
    }

    private static func hostNames(of inventory: Inventory) -> [String] {
        inventory.hosts.flatMap { [$0.name, $0.shortName] }
    }

    /// The inventory as the command would read it: --inventory among the words typed so far (the
    /// shells pass them verbatim, so surrounding quotes are dropped), else CHPKI_INVENTORY, else
    /// ./cluster.yml. Nil when there is none or it does not parse: completion offers nothing
    /// rather than printing an error into the operator's prompt.
    private static func inventory(_ words: [String]) -> Inventory? {
        var named: String?
        for (index, word) in words.enumerated() {
            if word == "--inventory", index + 1 < words.count {
                named = words[index + 1]
            } else if word.hasPrefix("--inventory=") {
                named = String(word.dropFirst("--inventory=".count))
            }
        }
        let path = named.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) }
        return try? Settings(caDirectory: nil, inventory: path).inventoryIfPresent()
    }
}
