package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// errUsage marks a flag value, or a combination of flags, that a command refuses.
var errUsage = errors.New("usage")

// errCAFile marks a --ca file that does not hold PEM certificates.
var errCAFile = errors.New("not a PEM file of certificates")

// loopbackCert returns a self-signed certificate for the loopback receiver, valid for the
// IP 127.0.0.1 and the name localhost from an hour before now to 30 days after, and the same
// certificate in PEM, for a client to trust. Its key (ECDSA P-256) exists only in memory.
func loopbackCert(now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "pushfn receiver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse the new certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// loadRoots reads the --ca file at path: the certificates a bench client trusts for an https
// target. An empty path means none (the system's roots).
func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool, _, err := parseRoots(data)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", path, err)
	}
	return pool, nil
}

// parseRoots returns the pool of the CERTIFICATE blocks of PEM data, and how many there are. It
// skips blocks of other types (a key beside its certificate) and refuses data with no
// certificate, a certificate that does not parse, or bytes that are not PEM.
func parseRoots(data []byte) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n, blocks := 0, 0
	for rest := data; ; blocks++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			switch left := len(bytes.TrimSpace(rest)); {
			case left > 0 && blocks == 0:
				return nil, 0, fmt.Errorf("%w: no PEM block", errCAFile)
			case left > 0:
				return nil, 0, fmt.Errorf("%w: %d bytes after PEM block %d are not PEM", errCAFile, left, blocks)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: certificate %d: %w", errCAFile, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: no CERTIFICATE block", errCAFile)
	}
	return pool, n, nil
}
