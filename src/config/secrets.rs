//! Settings given either directly or as a file (a mounted Kubernetes Secret).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, invalid};

/// Reads a setting given either directly or as a file; both at once is ambiguous and refused.
/// Surrounding whitespace (the newline `echo` leaves in a Secret) is trimmed.
pub(super) fn value_or_file(
    (name, value): (&str, &Option<String>),
    (file_name, file): (&str, &Option<PathBuf>),
) -> Result<Option<String>, ConfigError> {
    let text = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                name,
                format!("set either {name} or {file_name}, not both"),
            ));
        }
        (Some(value), None) => value.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                name: file_name.to_owned(),
                path: path.display().to_string(),
                source,
            })?
        }
        (None, None) => return Ok(None),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(name, "is empty"));
    }
    Ok(Some(trimmed.to_owned()))
}

/// [`value_or_file`] for a secret: it stays a `SecretString` on either path.
pub(super) fn secret_or_file(
    (name, value): (&str, &Option<SecretString>),
    file: (&str, &Option<PathBuf>),
) -> Result<Option<SecretString>, ConfigError> {
    let exposed = value.as_ref().map(|v| v.expose_secret().to_owned());
    value_or_file((name, &exposed), file).map(|text| text.map(SecretString::from))
}
