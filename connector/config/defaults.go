package config

import (
	"reflect"
	"time"

	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/ldapx"
)

// Defaults is the one table of defaults: every setting the configuration
// defaults, with its default. A setting left unset (its zero value) takes
// the value here; the first domain stands for every domain. Components
// that receive these settings (the Service Bus source, the engine) have
// no defaults of their own for them.
func Defaults() Config {
	perUser := 5
	return Config{
		Domains: []*Domain{{
			PoolSize: ldapx.DefaultPoolSize, DialTimeout: ldapx.DefaultDialTimeout, OpTimeout: ldapx.DefaultOpTimeout,
			PolicyRefresh: ldapx.DefaultPolicyRefresh, DCProbeInterval: ldapx.DefaultProbeInterval,
			Bind:      Bind{Method: BindSimple},
			OrgPolicy: OrgPolicy{BannedMode: "strict"},
		}},
		Queue: Queue{
			Auth: "connection_string", Transport: "amqp",
			Prefetch: 8, Concurrency: 4, ShutdownGrace: 20 * time.Second,
		},
		Results: Results{Mode: "reply_queue", TTL: 10 * time.Minute, AccountCodes: AccountCodesDistinct,
			UndeliverableAfter: 2 * time.Minute},
		Status:  Status{Interval: time.Minute},
		Journal: Journal{Retention: journal.DefaultRetention},
		Audit:   Audit{UnverifiedPerMinute: 10},
		Limits:  Limits{PerUser: &perUser, Window: 24 * time.Hour, Concurrency: 4, MaxAttempts: 5},
		HTTP:    HTTP{Listen: "127.0.0.1:8080"},
		Log:     Log{Level: "info", Format: "json"},
	}
}

// defaults fills every unset setting from Defaults, then the settings
// whose default depends on others (bindDefaults).
func (c *Config) defaults() {
	fill(reflect.ValueOf(c).Elem(), reflect.ValueOf(Defaults()))
	for _, d := range c.Domains {
		if d != nil {
			d.Bind.defaults(d)
		}
	}
}

// defaults fills a Kerberos bind's realm (the domain's name in capitals)
// and KDCs (each server's host, on 88), unless a krb5.conf names them.
func (b *Bind) defaults(d *Domain) {
	if b.Method != BindKerberos || b.Krb5Conf != "" {
		return
	}
	if b.Realm == "" && d.Name != "" {
		b.Realm = ldapx.DefaultRealm(d.Name)
	}
	if len(b.KDCs) == 0 {
		b.KDCs = ldapx.DefaultKDCs(d.Servers)
	}
}

// fill sets each zero field of v to def's, recursively. In a slice, def's
// first element is the template of every element; a nil element stays nil
// (validate reports it). A nil pointer gets a copy of def's value; a set
// pointer to a scalar is a setting given, even if zero (limits.per_user: 0).
func fill(v, def reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), def.Field(i))
		}
	case reflect.Slice:
		if def.Len() == 0 {
			return
		}
		for i := range v.Len() {
			if e := v.Index(i); e.Kind() != reflect.Pointer || !e.IsNil() {
				fill(e, def.Index(0))
			}
		}
	case reflect.Pointer:
		switch {
		case def.IsNil():
		case v.IsNil():
			p := reflect.New(def.Type().Elem())
			p.Elem().Set(def.Elem())
			v.Set(p)
		case v.Elem().Kind() == reflect.Struct:
			fill(v.Elem(), def.Elem())
		}
	default:
		if v.IsZero() {
			v.Set(def)
		}
	}
}
