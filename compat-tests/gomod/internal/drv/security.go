// Security settings of a driver's spec ("security" in the JSON): TLS (with an
// optional client certificate) and SASL, as test_secure_clients.py passes them.

package drv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Security is the spec's "security" object; the zero value is PLAINTEXT.
type Security struct {
	Protocol  string `json:"protocol"`  // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
	CA        string `json:"ca"`        // PEM file of the CA that signed the broker's certificate
	Cert      string `json:"cert"`      // client certificate (PEM), for mTLS
	Key       string `json:"key"`       // its unencrypted key (PEM)
	Mechanism string `json:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username  string `json:"username"`
	Password  string `json:"password"`
}

// UsesTLS says whether the connection is encrypted.
func (s Security) UsesTLS() bool { return s.Protocol == "SSL" || s.Protocol == "SASL_SSL" }

// UsesSASL says whether the connection authenticates with SASL.
func (s Security) UsesSASL() bool {
	return s.Protocol == "SASL_PLAINTEXT" || s.Protocol == "SASL_SSL"
}

// TLSConfig is the client's TLS configuration: the CA as the only root, the
// client certificate when given; the broker's name is verified.
func (s Security) TLSConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(s.CA)
	if err != nil {
		return nil, fmt.Errorf("security.ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("security.ca %s: no certificate in it", s.CA)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if s.Cert != "" {
		pair, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			return nil, fmt.Errorf("security.cert/key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
