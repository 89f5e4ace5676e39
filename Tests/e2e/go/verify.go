// verify: Go's crypto/x509 path validation (with name constraints), for the chpki e2e tests.
//
// Usage: go run verify.go ROOTS_PEM CHAIN_PEM [NAME...]
//
// ROOTS_PEM holds the trusted roots; CHAIN_PEM the leaf first, then any intermediates. Each NAME
// (a DNS name or an IP address) is verified as opts.DNSName, as a Go TLS client does; without a
// NAME the chain alone is verified (Go still applies every name constraint to every SAN). Prints
// one line per check, "ok NAME" or "fail NAME: error"; exits 1 if any check failed, 2 on bad input.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func certificates(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no certificate\n", path)
		os.Exit(2)
	}
	return certs
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go run verify.go ROOTS_PEM CHAIN_PEM [NAME...]")
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	for _, root := range certificates(os.Args[1]) {
		roots.AddCert(root)
	}
	chain := certificates(os.Args[2])
	intermediates := x509.NewCertPool()
	for _, cert := range chain[1:] {
		intermediates.AddCert(cert)
	}
	names := os.Args[3:]
	if len(names) == 0 {
		names = []string{""}
	}
	failed := false
	for _, name := range names {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: name,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := chain[0].Verify(opts); err != nil {
			fmt.Printf("fail %s: %v\n", name, err)
			failed = true
		} else {
			fmt.Printf("ok %s\n", name)
		}
	}
	if failed {
		os.Exit(1)
	}
}
