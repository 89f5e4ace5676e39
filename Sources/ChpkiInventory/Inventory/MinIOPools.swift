import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// MinIO server pools (SPEC §7 Growth): a MinIO deployment grows by whole pools, never by one
/// server into a pool that runs (the erasure sets are fixed when a pool is made). The inventory
/// declares them under the minio service (`pools: [[backend-1, ..., backend-4], [backend-5, ...]]`);
/// without `pools:` all the service's hosts are one pool, as before. Each pool is one argument
/// of MINIO_VOLUMES, written as MinIO's `{x...y}` expansion, so every pool's servers must be
/// named by one number range (backend-5 ... backend-8).
public enum MinIOPools {
    /// The inventory key, under `services.minio`.
    public static let key = "pools"

    /// The parity MinIO picks by default for an erasure set of `drives` drives (one drive per
    /// server here; docs/distributed/SIZING.md of MinIO: 1 → 0, 2–3 → 1, 4–5 → 2, 6–8 → 3, 9–16 → 4).
    static func defaultParity(drives: Int) -> Int {
        switch drives {
        case ...1: return 0
        case 2...3: return 1
        case 4...5: return 2
        case 6...8: return 3
        default: return 4
        }
    }

    /// The erasure set size MinIO makes of `servers` single-drive servers: the largest of 2...16
    /// that divides it (nil: none does, MinIO refuses the pool).
    static func setSize(servers: Int) -> Int? {
        servers <= 16 ? servers : (2...16).reversed().first { servers % $0 == 0 }
    }

    /// The fewest servers a pool after the first may have: twice the parity of the first pool's
    /// sets (a set of a new pool must hold the deployment's parity at most half its drives).
    public static func minimumNewPool(firstPool servers: Int) -> Int {
        max(2, 2 * defaultParity(drives: setSize(servers: servers) ?? 16))
    }

    /// Why `servers` cannot be one pool, nil when they can.
    public static func problem(pool index: Int, servers: [String], firstPool: Int) -> String? {
        if index > 0, servers.count < minimumNewPool(firstPool: firstPool) {
            return "\(servers.count) server\(servers.count == 1 ? "" : "s"); a new pool needs at least \(minimumNewPool(firstPool: firstPool)) "
                + "(twice the parity MinIO chose for the first pool of \(firstPool)): add the servers that complete it"
        }
        if servers.count < 2 {
            return "\(servers.count) server(s); MinIO pools are distributed (2 or more servers)"
        }
        if setSize(servers: servers.count) == nil {
            return "\(servers.count) servers cannot be split into erasure sets of 2 to 16 drives"
        }
        if expansion(servers) == nil {
            return "MINIO_VOLUMES names a pool by one {x...y} range: name its servers with consecutive numbers "
                + "(\(servers.prefix(2).joined(separator: ", ")), ... are not)"
        }
        return nil
    }

    /// `backend-{5...8}.example.com` for backend-5 ... backend-8 (in that order, same text around the
    /// last number of the first label, zero-padded alike); nil when they are not such a range.
    public static func expansion(_ servers: [String]) -> String? {
        let parts = servers.map(split)
        guard let first = parts.first, let firstPart = first else { return nil }
        var expected = firstPart.number
        for part in parts {
            guard let part, part.prefix == firstPart.prefix, part.suffix == firstPart.suffix,
                  part.number == expected, part.digits.count == firstPart.digits.count || !firstPart.digits.hasPrefix("0") && !part.digits.hasPrefix("0")
            else { return nil }
            expected += 1
        }
        let last = parts.last!!.digits
        return "\(firstPart.prefix){\(firstPart.digits)...\(last)}\(firstPart.suffix)"
    }

    /// A name as the text before and after the last run of digits of its first label, and that run.
    private static func split(_ name: String) -> (prefix: String, digits: String, number: Int, suffix: String)? {
        let label = name.prefix { $0 != "." }
        guard let end = label.lastIndex(where: \.isASCIIDigit) else { return nil }
        var start = end
        while start > label.startIndex, label[label.index(before: start)].isASCIIDigit { start = label.index(before: start) }
        let digits = String(label[start...end])
        guard digits.count <= 9, let number = Int(digits) else { return nil }
        return (String(name[..<start]), digits, number, String(name[name.index(after: end)...]))
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
