import Foundation
import Yams
import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// The hosts of the Ansible inventory that `ansible_inventory: FILE` names (SPEC §2), so the
/// cluster is described once: a host's FQDN is its inventory name, its groups its Ansible groups
/// (with the groups above them, as Ansible counts membership; never `all` or `ungrouped`), its IPs
/// the host variable `ips`, else `ansible_host` when that is an IP address.
///
/// FILE is read as `ansible-inventory -i FILE --list` prints it: directly when it already is that
/// JSON, else through `ansible-inventory` (any inventory Ansible reads: INI, YAML, a directory,
/// a script). The hosts come back as drafts; `HostListChecker` applies the same rules as to `hosts:`.
struct AnsibleInventory {
    /// FILE resolved against the directory of `cluster.yml`.
    let path: String
    /// An error about the `ansible_inventory:` key itself, located in cluster.yml.
    let errorInCluster: (ChpkiError.Code, String) -> ChpkiError

    static let program = "ansible-inventory"
    /// Groups every host is in, which say nothing about it.
    static let implicitGroups: Set<String> = ["all", "ungrouped"]

    init(file: String, relativeTo clusterFile: String, errorInCluster: @escaping (ChpkiError.Code, String) -> ChpkiError) {
        path = file.hasPrefix("/") ? file : Path.join(Path.parent(of: clusterFile), file)
        self.errorInCluster = errorInCluster
    }

    func hosts() throws -> [HostDraft] {
        let (text, isListFile) = try listJSON()
        // Yams reads JSON (a subset of YAML) keeping the order of keys, which the inventory's host
        // order comes from, and the lines, which point into FILE when it was the JSON itself.
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw fail(.inventorySyntax, nil, nil, "not valid ansible-inventory --list JSON: \(error)", lines: false)
        }
        return try Reader(path: path, lines: isListFile).drafts(root)
    }

    /// The `--list` JSON, and whether FILE itself was it.
    private func listJSON() throws -> (String, Bool) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw errorInCluster(.fileMissing, "no such Ansible inventory: \(path)")
        }
        if !isDirectory.boolValue {
            let data: Data
            switch RegularFile.read(path, limit: ReadLimits.inventory) {
            case let .success((contents, _)): data = contents
            case let .failure(failure): throw errorInCluster(failure.code, "the Ansible inventory \(path): \(failure.reason)")
            }
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["_meta"] != nil,
               let text = String(data: data, encoding: .utf8) {
                return (text, true)
            }
        }
        let result: Subprocess.Result
        do {
            // Unparseable sources are errors, not warnings followed by an empty inventory.
            result = try Subprocess.run(Self.program, ["-i", path, "--list"], extraEnvironment: [
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
                "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
                "ANSIBLE_NOCOLOR": "1",
            ], outputLimit: ReadLimits.inventory)
        } catch Subprocess.Failure.notFound {
            throw errorInCluster(.inventoryAnsibleFailed, "\(path) is not ansible-inventory --list JSON, and \(Self.program) is not on PATH: install ansible-core, or give the output of '\(Self.program) -i FILE --list'")
        } catch {
            throw errorInCluster(.inventoryAnsibleFailed, "cannot run \(Self.program): \(error)")
        }
        guard result.status == 0 else {
            throw errorInCluster(.inventoryAnsibleFailed, "'\(Self.program) -i \(path) --list' failed (exit \(result.status)): \(Self.lastLine(of: result.stderr))")
        }
        guard let text = String(data: result.stdout, encoding: .utf8) else {
            throw errorInCluster(.inventoryAnsibleFailed, "'\(Self.program) -i \(path) --list' printed no UTF-8 text")
        }
        return (text, false)
    }

    private func fail(_ code: ChpkiError.Code, _ node: Node?, _ field: String?, _ reason: String, lines: Bool) -> ChpkiError {
        ChpkiError.input(code, file: path, line: lines ? node?.mark?.line : nil, field: field, reason)
    }

    /// The last line of a program's error output that says something, on one line.
    static func lastLine(of data: Data) -> String {
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let last = lines.last(where: { $0.hasPrefix("[ERROR]") }) ?? lines.last else { return "no error message" }
        return String(last.prefix(300))
    }

    /// Walks the `--list` JSON: `{"_meta": {"hostvars": {...}}, "all": {"children": [...]},
    /// GROUP: {"hosts": [...], "children": [...]}, ...}`.
    private struct Reader {
        let path: String
        /// Whether line numbers point into the file the user wrote.
        let lines: Bool

        struct Group {
            var hosts: [String] = []
            var children: [String] = []
        }

        func error(_ code: ChpkiError.Code, _ node: Node?, _ field: String?, _ reason: String) -> ChpkiError {
            ChpkiError.input(code, file: path, line: lines ? node?.mark?.line : nil, field: field, reason)
        }

        func mapping(_ node: Node?, _ field: String) throws -> [(String, Node)] {
            guard let node else { return [] }
            guard let mapping = node.mapping else {
                throw error(.inventoryWrongType, node, field, "expected a JSON object")
            }
            return try mapping.map { key, value in
                guard let name = key.string else { throw error(.inventoryWrongType, key, field, "expected string keys") }
                return (name, value)
            }
        }

        func strings(_ node: Node?, _ field: String) throws -> [(String, Node)] {
            guard let node else { return [] }
            guard let sequence = node.sequence else {
                throw error(.inventoryWrongType, node, field, "expected a list, found \(Self.describe(node))")
            }
            return try sequence.enumerated().map { index, item in
                guard case let .scalar(scalar) = item else {
                    throw error(.inventoryWrongType, item, "\(field)[\(index)]", "expected a string, found \(Self.describe(item))")
                }
                return (scalar.string, item)
            }
        }

        static func describe(_ node: Node) -> String {
            switch node {
            case .mapping: return "an object"
            case .sequence: return "a list"
            case .alias: return "an alias"
            case let .scalar(scalar): return "'\(scalar.string.prefix(40))'"
            }
        }

        func drafts(_ root: Node?) throws -> [HostDraft] {
            guard let root, root.mapping != nil else {
                throw error(.inventoryWrongType, root, nil, "expected the JSON object that ansible-inventory --list prints")
            }
            var groups: [String: Group] = [:]
            var groupOrder: [String] = []
            var hostvars: [String: Node] = [:]
            for (key, value) in try mapping(root, "") {
                if key == "_meta" {
                    let meta = try mapping(value, "_meta")
                    if let vars = meta.first(where: { $0.0 == "hostvars" }) {
                        for (host, node) in try mapping(vars.1, "_meta.hostvars") { hostvars[host] = node }
                    }
                    continue
                }
                var group = Group()
                for (field, node) in try mapping(value, key) {
                    switch field {
                    case "hosts": group.hosts = try strings(node, "\(key).hosts").map(\.0)
                    case "children": group.children = try strings(node, "\(key).children").map(\.0)
                    default: continue // "vars" of older versions: --list also puts them in hostvars
                    }
                }
                groups[key] = group
                groupOrder.append(key)
            }

            // Hosts in the order Ansible lists them: depth first from "all".
            var order: [String] = []
            var seenHosts = Set<String>()
            var visited = Set<String>()
            func visit(_ name: String) {
                guard visited.insert(name).inserted, let group = groups[name] else { return }
                for host in group.hosts where seenHosts.insert(host).inserted { order.append(host) }
                for child in group.children { visit(child) }
            }
            visit("all")
            for name in groupOrder { visit(name) }
            for host in hostvars.keys.sorted() where seenHosts.insert(host).inserted { order.append(host) }

            // A host is in a group when it or a group below it lists the host.
            var members: [String: Set<String>] = [:]
            func membersOf(_ name: String, _ path: Set<String>) -> Set<String> {
                if let known = members[name] { return known }
                guard let group = groups[name], !path.contains(name) else { return [] }
                var result = Set(group.hosts)
                for child in group.children { result.formUnion(membersOf(child, path.union([name]))) }
                members[name] = result
                return result
            }
            let named = groupOrder.filter { !AnsibleInventory.implicitGroups.contains($0) }
            let membership = Dictionary(uniqueKeysWithValues: named.map { ($0, membersOf($0, [])) })

            return try order.map { host in
                let groupsOfHost = named.filter { membership[$0]?.contains(host) == true }
                return try draft(host, vars: hostvars[host], groups: groupsOfHost)
            }
        }

        private func draft(_ host: String, vars: Node?, groups: [String]) throws -> HostDraft {
            let field = "host \(host)"
            let entries = try mapping(vars, "_meta.hostvars.\(host)")
            var ips: [(String, Node)] = []
            var ipsNode: Node? = vars
            if let given = entries.first(where: { $0.0 == "ips" }) {
                ipsNode = given.1
                guard given.1.sequence != nil else {
                    throw error(.inventoryWrongType, given.1, "\(field): ips", "expected a list of IP addresses, found \(Self.describe(given.1)); write ips: [ADDRESS, ...] (or ips: [] for none)")
                }
                ips = try strings(given.1, "\(field): ips")
            } else if let ansibleHost = entries.first(where: { $0.0 == "ansible_host" }), let text = ansibleHost.1.string,
                      IPAddress(text) != nil {
                ips = [(text, ansibleHost.1)]
                ipsNode = ansibleHost.1
            } else {
                let shown = entries.first(where: { $0.0 == "ansible_host" }).map { "ansible_host \(Self.describe($0.1)) is not an IP address" }
                    ?? "no ips and no ansible_host"
                throw error(.inventoryMissingField, vars, field, "the host's IP addresses are unknown (\(shown)): set the host variable ips: [ADDRESS, ...], or ips: [] for none")
            }
            let path = self.path
            let lines = self.lines
            let locate = { (code: ChpkiError.Code, node: Node?, at: String, reason: String) in
                ChpkiError.input(code, file: path, line: lines ? node?.mark?.line : nil, field: at, reason)
            }
            return HostDraft(name: host, ips: ips.map(\.0), groups: groups, label: "host \(host) of \(path)") { code, part, reason in
                switch part {
                case .name: return locate(code, vars, field, reason)
                case let .ip(i): return locate(code, i < ips.count ? ips[i].1 : ipsNode, "\(field): ips[\(i)]", reason)
                case let .group(i): return locate(code, vars, "\(field): group '\(i < groups.count ? groups[i] : "?")'", reason)
                }
            }
        }
    }
}
