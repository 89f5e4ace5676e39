import Foundation
import ChpkiBase

/// The most chpki reads of each kind of file it did not write (SPEC §8: every such read is
/// bounded), in one place. A file past its limit is refused with one line naming it, before a byte
/// of it is read: a 3 GiB sparse "key" must not exhaust memory. Each limit is far above what a
/// real file of the kind holds, and small enough to read whole.
public enum ReadLimits {
    /// A passphrase file: one line; 64 KiB is far beyond any passphrase.
    public static let passphraseFile = 64 << 10
    /// `cluster.yml` or a static Ansible inventory: 10,000 hosts take about 2 MB of YAML or JSON.
    public static let inventory = 32 << 20
    /// A template override: the built-in templates are under 3 kB each.
    public static let template = 1 << 20
    /// An `inspect` input (certificate, key, CSR, CRL): a CRL of a million revocations is about 50 MB of PEM.
    public static let inspectInput = 64 << 20
    /// A file of a host tree that `verify --bundle`/`--installed` reads (certificate, key, snippet,
    /// `MANIFEST.json`): the largest chpki writes is the manifest of a balancer with thousands of
    /// VIPs, a few MB.
    public static let bundleFile = 16 << 20
    /// A file of the CA directory (certificate views, `crl.pem`, an older chpki's CA files): the CRL
    /// is the largest, as for `inspectInput`.
    public static let caFile = 64 << 20

    /// "16 MiB", "3.0 GiB": sizes as an operator reads them.
    public static func format(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return value == value.rounded() ? "\(Int(value)) \(units[unit])" : String(format: "%.1f %@", value, units[unit])
    }

    /// The reason a file over `limit` is refused: "3.0 GiB, more than the 16 MiB chpki reads of such a file".
    public static func tooLarge(size: Int?, limit: Int) -> String {
        (size.map { "\(format($0)), more" } ?? "more") + " than the \(format(limit)) chpki reads of such a file"
    }
}
