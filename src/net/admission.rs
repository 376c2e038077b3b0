//! Node-wide caps on open WebSocket connections per client IP and per tenant,
//! checked at upgrade (HTTP 429 above them).
//!
//! The counts are shared by every shard behind one `Mutex<HashMap>`: it is
//! taken once when a connection is admitted and once when it ends, never on
//! the data path, so contention is bounded by the connection rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections_per_ip`.
    PerIp,
    /// `server.max_connections_per_tenant`.
    PerTenant,
}

impl Refusal {
    /// The `reason` of the 429 body.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerIp => "per_ip",
            Refusal::PerTenant => "per_tenant",
        }
    }
}

#[derive(Default)]
struct Counts {
    ip: HashMap<IpAddr, usize>,
    tenant: HashMap<String, usize>,
}

/// Open connections per IP and per tenant, with their caps (0 = unlimited).
pub struct Admission {
    per_ip: usize,
    per_tenant: usize,
    counts: Mutex<Counts>,
}

impl Admission {
    /// Caps of `per_ip` and `per_tenant` connections; 0 means unlimited.
    pub fn new(per_ip: usize, per_tenant: usize) -> Arc<Self> {
        Arc::new(Admission {
            per_ip,
            per_tenant,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The critical sections cannot panic halfway; a poisoned lock still holds valid counts.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip` for `tenant`, or says which cap it
    /// would exceed. The slot is given back when the returned guard drops.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, tenant: &str) -> Result<Slot, Refusal> {
        let mut c = self.counts();
        let at_cap = |n: Option<&usize>, cap: usize| cap != 0 && n.copied().unwrap_or(0) >= cap;
        if at_cap(c.ip.get(&ip), self.per_ip) {
            return Err(Refusal::PerIp);
        }
        if at_cap(c.tenant.get(tenant), self.per_tenant) {
            return Err(Refusal::PerTenant);
        }
        *c.ip.entry(ip).or_default() += 1;
        *c.tenant.entry(tenant.to_owned()).or_default() += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
            tenant: tenant.to_owned(),
        })
    }

    fn release(&self, ip: IpAddr, tenant: &str) {
        let mut c = self.counts();
        decrement(&mut c.ip, &ip);
        decrement(&mut c.tenant, tenant);
    }
}

/// Removes the entry at zero so the maps hold only live IPs and tenants.
fn decrement<K, Q>(map: &mut HashMap<K, usize>, key: &Q)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// One admitted connection; dropping it (also while unwinding) frees its slot.
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(self.ip, &self.tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Admission {
        fn open(&self, ip: IpAddr, tenant: &str) -> (usize, usize) {
            let c = self.counts();
            (
                c.ip.get(&ip).copied().unwrap_or(0),
                c.tenant.get(tenant).copied().unwrap_or(0),
            )
        }
    }

    #[test]
    fn caps_per_ip_and_per_tenant_and_frees_on_drop() {
        let a = Admission::new(2, 3);
        let (ip1, ip2): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s1 = a.admit(ip1, "t1").unwrap();
        let _s2 = a.admit(ip1, "t1").unwrap();
        assert_eq!(a.admit(ip1, "t2").err(), Some(Refusal::PerIp));
        let _s3 = a.admit(ip2, "t1").unwrap();
        assert_eq!(a.admit(ip2, "t1").err(), Some(Refusal::PerTenant));
        assert_eq!(a.open(ip1, "t1"), (2, 3));
        drop(s1);
        assert_eq!(a.open(ip1, "t1"), (1, 2));
        let _s4 = a.admit(ip2, "t1").unwrap();
    }

    #[test]
    fn zero_means_unlimited() {
        let a = Admission::new(0, 0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| a.admit(ip, "t").unwrap()).collect();
        assert_eq!(a.open(ip, "t"), (1000, 1000));
        drop(slots);
        assert_eq!(a.open(ip, "t"), (0, 0));
        assert!(a.counts().ip.is_empty() && a.counts().tenant.is_empty());
    }
}
