package push

import "testing"

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1024)
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	s := newSigner(keys)
	for b.Loop() {
		s.sign("msg_06h0t8b6c9jkc38g130fp6wssr", 1614265330, body)
	}
}
