// TLS and SASL for the sarama driver (test_secure_clients.py). sarama leaves
// the SCRAM exchange to a client the application supplies: this one is
// franz-go's SCRAM implementation (pkg/sasl/scram) behind sarama's interface,
// so no SCRAM code is written here.

package main

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
	franzsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"kastle/compat-tests/gomod/internal/drv"
)

func applySecurity(cfg *sarama.Config, sec drv.Security) error {
	if sec.UsesTLS() {
		t, err := sec.TLSConfig()
		if err != nil {
			return err
		}
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = t
	}
	if !sec.UsesSASL() {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User = sec.Username
	cfg.Net.SASL.Password = sec.Password
	auth := scram.Auth{User: sec.Username, Pass: sec.Password}
	switch sec.Mechanism {
	case "PLAIN":
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case "SCRAM-SHA-256":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mech: auth.AsSha256Mechanism()}
		}
	case "SCRAM-SHA-512":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mech: auth.AsSha512Mechanism()}
		}
	default:
		return fmt.Errorf("security.mechanism %q is not supported by this driver", sec.Mechanism)
	}
	return nil
}

// scramClient adapts a franz-go SASL mechanism to sarama.SCRAMClient.
type scramClient struct {
	mech    franzsasl.Mechanism
	session franzsasl.Session
	first   []byte
	started bool
	done    bool
}

func (c *scramClient) Begin(_, _, _ string) error {
	s, first, err := c.mech.Authenticate(context.Background(), "")
	if err != nil {
		return err
	}
	c.session, c.first = s, first
	return nil
}

// Step answers the server's last message; sarama starts with an empty one.
func (c *scramClient) Step(challenge string) (string, error) {
	if !c.started {
		c.started = true
		return string(c.first), nil
	}
	done, next, err := c.session.Challenge([]byte(challenge))
	if err != nil {
		return "", err
	}
	c.done = done
	return string(next), nil
}

func (c *scramClient) Done() bool { return c.done }
