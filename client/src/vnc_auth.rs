//! The VNC server's password, for a server set up with a password file (TigerVNC's and
//! KasmVNC's `-rfbauth`): a new random one for every assignment, written where the server
//! reads it, and the RFB handshake done by the agent itself on each desktop stream. The
//! password never leaves the VM; the browser is offered no security of its own, because the
//! allocator's per-assignment cookie is the gate. Without a password file, streams are
//! relayed as they are.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use rand::Rng;

/// The key VNC's password files are obfuscated with (the well-known fixed key of `vncpasswd`,
/// as standard DES sees it).
const PASSWORD_FILE_KEY: [u8; 8] = [0xe8, 0x4a, 0xd6, 0x60, 0xc4, 0x72, 0x1a, 0xe0];
/// RFB's security type "VNC authentication".
pub const VNC_AUTH: u8 = 2;
/// RFB's security type "None".
pub const NO_AUTH: u8 = 1;

fn des_encrypt(key: [u8; 8], block: &mut [u8; 8]) {
    let cipher = Des::new(&key.into());
    cipher.encrypt_block(block.into());
}

/// The password file's bytes for `password` (what `vncpasswd -f` writes).
pub fn password_file_bytes(password: &[u8; 8]) -> [u8; 8] {
    let mut block = *password;
    des_encrypt(PASSWORD_FILE_KEY, &mut block);
    block
}

/// The answer to the server's 16-byte challenge: the challenge DES-encrypted with the
/// password, whose bytes RFB uses bit-reversed as the key.
pub fn challenge_response(password: &[u8; 8], challenge: &[u8; 16]) -> [u8; 16] {
    let key = password.map(u8::reverse_bits);
    let mut response = *challenge;
    for half in response.chunks_exact_mut(8) {
        let mut block: [u8; 8] = half.try_into().expect("8 bytes");
        des_encrypt(key, &mut block);
        half.copy_from_slice(&block);
    }
    response
}

/// The password of the VNC server and the file it reads it from.
#[derive(Debug)]
pub struct VncPassword {
    file: PathBuf,
    current: Mutex<Option<[u8; 8]>>,
}

impl VncPassword {
    pub fn new(file: PathBuf) -> Self {
        VncPassword {
            file,
            current: Mutex::new(None),
        }
    }

    /// A new random password, written to the file (readable by this user only), replacing
    /// the file at once so the server never reads half of one.
    pub fn rotate(&self) -> std::io::Result<()> {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        let password: [u8; 8] =
            std::array::from_fn(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]);
        let staging = self.file.with_extension("lablink-new");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&staging)?;
            file.write_all(&password_file_bytes(&password))?;
            file.sync_all()?;
        }
        std::fs::rename(&staging, &self.file)?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(password);
        Ok(())
    }

    /// The password the server holds now, once one was set.
    pub fn current(&self) -> Option<[u8; 8]> {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_is_what_vncpasswd_writes() {
        // `echo password | vncpasswd -f | xxd` (TigerVNC's tools).
        assert_eq!(
            password_file_bytes(b"password"),
            [0xdb, 0xd8, 0x3c, 0xfd, 0x72, 0x7a, 0x14, 0x58]
        );
    }

    #[test]
    fn a_rotation_writes_a_new_private_password() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let vnc = VncPassword::new(dir.path().join("passwd"));
        vnc.rotate().expect("rotate");
        let first = vnc.current().expect("set");
        let stored = std::fs::read(dir.path().join("passwd")).expect("file");
        assert_eq!(stored, password_file_bytes(&first));
        let mode = std::fs::metadata(dir.path().join("passwd"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        vnc.rotate().expect("rotate again");
        assert_ne!(vnc.current(), Some(first));
    }
}
