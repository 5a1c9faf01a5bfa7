package segvguard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// NetBSD's defaults (sysctl security.pax.segvguard.*).
const (
	DefaultMaxCrashes     = 5   // max_crashes
	DefaultExpiryTimeout  = 120 // expiry_timeout, seconds
	DefaultSuspendTimeout = 600 // suspend_timeout, seconds
)

// Config is the sysctls security.pax.segvguard.{max_crashes,
// expiry_timeout, suspend_timeout}.
type Config struct {
	MaxCrashes     int
	ExpiryTimeout  int // seconds
	SuspendTimeout int // seconds
}

// DefaultConfig is NetBSD's.
func DefaultConfig() Config {
	return Config{MaxCrashes: DefaultMaxCrashes, ExpiryTimeout: DefaultExpiryTimeout, SuspendTimeout: DefaultSuspendTimeout}
}

// ParseConfig parses "MAX,EXPIRY,SUSPEND" (seconds for the two times);
// "" is DefaultConfig. Each value is a positive integer; NetBSD's sysctl
// accepts any int, but a zero or negative one would make the guard refuse
// nothing or suspend nothing.
func ParseConfig(s string) (Config, error) {
	if s == "" {
		return DefaultConfig(), nil
	}
	f := strings.Split(s, ",")
	if len(f) != 3 {
		return Config{}, fmt.Errorf("segvguard %q: want MAX,EXPIRY,SUSPEND", s)
	}
	var v [3]int
	for i, x := range f {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err == nil && n > 1<<30 || errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(strings.TrimSpace(x), "-") {
			return Config{}, fmt.Errorf("segvguard %q: %q is out of range (at most %d)", s, x, 1<<30)
		}
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("segvguard %q: %q is not a positive number", s, x)
		}
		v[i] = n
	}
	return Config{MaxCrashes: v[0], ExpiryTimeout: v[1], SuspendTimeout: v[2]}, nil
}

func (c Config) String() string {
	return fmt.Sprintf("%d,%d,%d", c.MaxCrashes, c.ExpiryTimeout, c.SuspendTimeout)
}
