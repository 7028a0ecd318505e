package message

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// TargetHost returns the host a URL points at, lowercased, without port, brackets or trailing
// dot: the key for per-host limits and the target_host of logs and records. It returns "" for a
// URL it cannot parse.
func TargetHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// CheckURL returns why rawURL is not an acceptable push target under r (the rules of
// target.url: absolute https URL, or http when allowed; at most MaxURLBytes; no user-info; a
// host that is no blocked IP literal or localhost unless private targets are allowed), or nil.
// The error's text is a reason for a person, to be shown after the field's name.
func (r Rules) CheckURL(rawURL string) error {
	if rawURL == "" {
		return errors.New("required: an absolute https URL")
	}
	if len(rawURL) > MaxURLBytes {
		return fmt.Errorf("is %d bytes; at most %d are allowed", len(rawURL), MaxURLBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch {
	case u.Scheme == "":
		return errors.New("must be an absolute URL such as https://hooks.example.com/push")
	case u.Scheme == "http" && !r.AllowHTTPTargets:
		return errors.New("must use https (plain http is not allowed here)")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q is not allowed; use https", u.Scheme)
	case u.Opaque != "":
		return errors.New("must be an absolute URL such as https://hooks.example.com/push")
	case u.User != nil:
		return errors.New("must not contain user-info (user:password@); send credentials in target.headers")
	case u.Host == "":
		return errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not from 1 to 65535", p)
		}
	}
	addr, isIP, err := parseHost(u)
	if err != nil {
		return err
	}
	if r.AllowPrivateTargets {
		return nil
	}
	if isIP && BlockedAddr(addr) {
		return fmt.Errorf("host %s is a loopback, private, link-local or reserved address", addr)
	}
	if name := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."); !isIP && isLocalhost(name) {
		return fmt.Errorf("host %s is loopback (localhost)", name)
	}
	return nil
}

// parseHost reads the host of u as an IP literal in any notation a resolver would accept
// (IPv6 in brackets; IPv4 dotted, or as one to four decimal, octal or hex parts), or checks
// it is a well-formed DNS name of ASCII letters, digits, hyphens and underscores.
func parseHost(u *url.URL) (addr netip.Addr, isIP bool, err error) {
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false, errors.New("host is not a valid IPv6 address")
		}
		if a.Zone() != "" {
			return netip.Addr{}, false, errors.New("host must not carry an IPv6 zone")
		}
		return a, true, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "" {
		return netip.Addr{}, false, errors.New("has no host")
	}
	if len(name) > 253 {
		return netip.Addr{}, false, errors.New("host name is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return netip.Addr{}, false, errors.New("host name has an empty or over-long label")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return netip.Addr{}, false, errors.New("host must be ASCII letters, digits, hyphens and dots (use the xn-- form of international names)")
			}
		}
	}
	if !isNumericLabel(labels[len(labels)-1]) {
		return netip.Addr{}, false, nil
	}
	a, ok := parseIPv4(labels)
	if !ok {
		return netip.Addr{}, false, errors.New("host ends in a number but is not a valid IPv4 address")
	}
	return a, true, nil
}

// isNumericLabel reports whether a resolver would read label as a number (WHATWG URL "ends in
// a number"): all decimal digits, or 0x followed by hex digits.
func isNumericLabel(l string) bool {
	if h, ok := strings.CutPrefix(l, "0x"); ok {
		return allIn(h, "0123456789abcdef")
	}
	return l != "" && allIn(l, "0123456789")
}

func allIn(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// parseIPv4 reads inet_aton's forms: a.b.c.d, a.b.c (c fills 16 bits), a.b (b fills 24 bits)
// and a (32 bits), each part decimal, octal (leading 0) or hex (leading 0x).
func parseIPv4(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseIPv4Part(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		rest := uint(8 * (4 - i))
		if n >= 1<<rest {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseIPv4Part(p string) (uint64, bool) {
	base := 10
	switch {
	case strings.HasPrefix(p, "0x"):
		p, base = p[2:], 16
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		p, base = p[1:], 8
	}
	if p == "" || len(p) > 12 {
		return 0, false
	}
	n, err := strconv.ParseUint(p, base, 64)
	return n, err == nil
}

// isLocalhost reports whether name is localhost or under it (RFC 6761 resolves those to
// loopback).
func isLocalhost(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
